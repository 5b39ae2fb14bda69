"""The gettext catalogues: Hutch's own (``hutch/locale``) and the operator's (``HUTCH_LOCALES_DIR``).

Catalogues are kept as ``.po`` files only and compiled in memory the first time a language is used (Babel's
``read_po`` then ``write_mo`` into a buffer, a few milliseconds per catalogue, once per process): no ``.mo``
build step to forget when installing, upgrading or adding a language, and no compiled file that can drift
from the text it was built from. A changed or added ``.po`` is read at the next start.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

PACKAGE_LOCALES = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
# The language the messages are written in (the msgids): always available, with or without a catalogue.
SOURCE_LANGUAGE = "en"


def canonical(code: str) -> str:
    """``es-ES``, ``es_es`` → ``es_ES``; ``ES`` → ``es``: how catalogue directories are named."""
    language, _, region = code.strip().replace("-", "_").partition("_")
    return f"{language.lower()}_{region.upper()}" if region else language.lower()


def html_lang(code: str) -> str:
    """The BCP 47 tag of a catalogue's language, for ``<html lang>``: ``pt_BR`` → ``pt-BR``."""
    return code.replace("_", "-")


def _catalogue_file(root: Path, language: str) -> Path:
    return root / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _roots(extra_dir: Path | None) -> list[Path]:
    """Where catalogues are looked for, the operator's first: theirs replaces or completes Hutch's."""
    return [extra_dir, PACKAGE_LOCALES] if extra_dir is not None else [PACKAGE_LOCALES]


@lru_cache(maxsize=8)
def available_languages(extra_dir: Path | None = None) -> tuple[str, ...]:
    """Every language with a catalogue (in Hutch or the operator's directory), the source language first."""
    found = {SOURCE_LANGUAGE}
    for root in _roots(extra_dir):
        if root.is_dir():
            found.update(p.name for p in root.iterdir() if _catalogue_file(root, p.name).is_file())
    return (SOURCE_LANGUAGE, *sorted(found - {SOURCE_LANGUAGE}))


def supported(code: str | None, extra_dir: Path | None = None) -> str | None:
    """``code`` as a language Hutch can speak (``es-ES`` → ``es`` when only ``es`` exists), else None."""
    if not code:
        return None
    languages = available_languages(extra_dir)
    wanted = canonical(code)
    if wanted in languages:
        return wanted
    base = wanted.partition("_")[0]
    return base if base in languages else None


def _compiled(path: Path) -> gettext.GNUTranslations:
    with path.open("rb") as source:
        catalogue = read_po(source, locale=path.parent.parent.name, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalogue, use_fuzzy=False)  # a fuzzy entry is a guess: English is shown instead
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@lru_cache(maxsize=32)
def translations(language: str, extra_dir: Path | None = None) -> gettext.NullTranslations:
    """The messages of ``language``: the operator's catalogue, then Hutch's, then the English source."""
    chain: gettext.NullTranslations = gettext.NullTranslations()
    for root in reversed(_roots(extra_dir)):  # the first added is the last asked
        path = _catalogue_file(root, language)
        if path.is_file():
            compiled = _compiled(path)
            compiled.add_fallback(chain)
            chain = compiled
    return chain
