"""Every text marked for translation in Hutch's sources has its Spanish translation, with the same
placeholders; extracted here with Babel the way docs/languages.md says to, so a new string without one
fails this test."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from hutch.channels.telegram.jobs import HELP
from hutch.i18n.catalogues import PACKAGE_LOCALES, available_languages, translations
from hutch.turns.inbox import PLAN_LIMIT_NOTICE

ROOT = Path(__file__).resolve().parents[2]
BRACES = re.compile(r"\{[a-z_]*(?:![rs])?\}")
PERCENT = re.compile(r"%\([a-z_]+\)[ds]")


@cache
def extracted() -> dict[str | tuple[str, ...], list[str]]:
    """Every msgid in the sources (a plural as its forms), with where it is."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[str | tuple[str, ...], list[str]] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, strip_comment_tags=True
    ):
        found.setdefault(message, []).append(f"{filename}:{line}")
    return found


def spanish() -> Catalog:
    with (PACKAGE_LOCALES / "es" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale="es")


def placeholders(text: str) -> set[str]:
    return set(BRACES.findall(text)) | set(PERCENT.findall(text))


def test_the_sources_mark_the_texts_people_read() -> None:
    messages = extracted()
    assert len(messages) > 600  # the dashboard, emails and bot notices, not a handful
    assert HELP in messages and PLAN_LIMIT_NOTICE in messages and "Reset your password" in messages


def test_every_marked_text_has_a_spanish_translation_with_the_same_placeholders() -> None:
    catalogue = spanish()
    missing, broken = [], []
    for msgid, where in extracted().items():
        entry = catalogue.get(msgid)
        targets = (
            () if entry is None else entry.string if isinstance(entry.string, tuple) else (entry.string,)
        )
        if entry is None or entry.fuzzy or not all(targets):
            missing.append(f"{where[0]}: {msgid!r}")
            continue
        sources = msgid if isinstance(msgid, tuple) else (msgid,)
        expected = set().union(*(placeholders(source) for source in sources))
        if any(placeholders(target) != expected for target in targets):
            broken.append(f"{where[0]}: {msgid!r} → {entry.string!r}")
    assert not missing, "no Spanish translation (src/hutch/locale/es/LC_MESSAGES/messages.po):\n" + "\n".join(
        missing
    )
    assert not broken, "placeholders differ:\n" + "\n".join(broken)


def test_the_spanish_catalogue_compiles_and_knows_its_plurals() -> None:
    assert "es" in available_languages(None)
    es = translations("es", None)
    assert es.ngettext("%(num)d minute of prepaid time left", "%(num)d minutes of prepaid time left", 1) == (
        "%(num)d minuto de tiempo prepago restante"
    )
    assert es.ngettext("%(num)d minute of prepaid time left", "%(num)d minutes of prepaid time left", 5) == (
        "%(num)d minutos de tiempo prepago restantes"
    )
