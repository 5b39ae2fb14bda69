"""Choosing a language: the person's choice, else their browser's ``Accept-Language``, else the default."""

from __future__ import annotations

from pathlib import Path

from hutch.i18n.catalogues import supported

MAX_RANGES = 20  # an Accept-Language header longer than this is cut: nobody reads 20 languages


def accepted(header: str | None) -> list[str]:
    """The header's language ranges, most wanted first (``q=0`` ones dropped; ``*`` ignored)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:MAX_RANGES]):
        code, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        code = code.strip()
        if code and code != "*" and quality > 0:
            ranked.append((-quality, position, code))
    return [code for _, _, code in sorted(ranked)]


def negotiate(
    chosen: str | None, accept_language: str | None, default: str, extra_dir: Path | None = None
) -> str:
    """The language to speak: ``chosen`` (a profile's, an org's) if Hutch has it, else the first of the
    browser's it has, else ``default`` (else English)."""
    for code in (chosen, *accepted(accept_language)):
        found = supported(code, extra_dir)
        if found is not None:
            return found
    return supported(default, extra_dir) or "en"
