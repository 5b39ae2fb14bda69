"""The operator's own texts: the privacy policy and terms of service (from the brand file's pages or the
files named in the settings), the brand's extra pages and its landing text. All are rendered to HTML that
cannot carry scripts: Markdown without raw HTML (and without ``javascript:`` links), or plain text (a
``.txt`` file) escaped and kept in its paragraphs. A file is re-read when it changes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import structlog
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from hutch.core.brand import Brand, Page
from hutch.i18n import N_, _

log = structlog.get_logger(__name__)
# "js-default": CommonMark with raw HTML off; links to javascript:, vbscript: and file: URLs are refused.
_MARKDOWN = MarkdownIt("js-default")
MAX_BYTES = 512 * 1024


@dataclass(frozen=True)
class Policy:
    title: str
    setting: str  # the setting that names its file
    body: Markup
    published: bool  # false: the operator has not set one; the default text shows


DEFAULTS = {
    "privacy": (N_("Privacy policy"), "HUTCH_PRIVACY_FILE"),
    "terms": (N_("Terms of service"), "HUTCH_TERMS_FILE"),
}


def render_text(text: str, plain: bool) -> Markup:
    if plain:
        paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
        return Markup("\n").join(
            Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in p.split("\n")))
            for p in paragraphs
        )
    return Markup(_MARKDOWN.render(text))  # noqa: S704 - raw HTML is off: the renderer escapes it


@lru_cache(maxsize=8)
def _rendered(path: Path, modified: float, size: int) -> Markup:
    with path.open("rb") as handle:
        text = handle.read(MAX_BYTES).decode("utf-8", errors="replace")
    return render_text(text, path.suffix.lower() == ".txt")


def file_text(path: Path) -> Markup:
    """A file of the operator's, rendered (cached until it changes); raises OSError when unreadable."""
    stat = path.stat()
    return _rendered(path, stat.st_mtime, stat.st_size)


def brand_page(page: Page) -> Policy | None:
    """One of the brand's pages, or None when its file is gone (the page then answers 404)."""
    try:
        return Policy(page.title, "HUTCH_BRAND_FILE", file_text(page.file), True)
    except OSError as exc:
        log.warning("brand page unreadable", page=page.slug, error=str(exc))
        return None


def landing_text(brand: Brand) -> Markup | None:
    """The brand's landing text, or None for the default one."""
    if brand.landing.file is None:
        return None
    try:
        return file_text(brand.landing.file)
    except OSError as exc:
        log.warning("landing file unreadable; showing the default text", error=str(exc))
        return None


def policy(kind: str, path: Path | None, brand: Brand | None = None) -> Policy:
    """The page's text: the brand file's page, else the setting's file (re-read when it changes), else a
    notice that there is none."""
    own = brand.page(kind) if brand is not None else None
    if own is not None and (shown := brand_page(own)) is not None:
        return shown
    source_title, setting = DEFAULTS[kind]
    title = _(source_title)
    if path is not None:
        try:
            return Policy(title, setting, file_text(path), True)
        except OSError as exc:
            log.warning("policy file unreadable; showing the default text", setting=setting, error=str(exc))
    notice = (
        _(
            "The operator of this service has not published its privacy policy yet. Until they do, ask them "
            "(the support address is on their website) how your data is handled and which terms apply."
        )
        if kind == "privacy"
        else _(
            "The operator of this service has not published its terms of service yet. Until they do, ask "
            "them (the support address is on their website) how your data is handled and which terms apply."
        )
    )
    body = Markup("<p>{}</p>").format(notice)
    return Policy(title, setting, body, False)
