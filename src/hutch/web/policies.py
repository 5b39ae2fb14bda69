"""The operator's privacy policy and terms of service, from the files named in the settings, rendered to
HTML that cannot carry scripts: Markdown without raw HTML (and without ``javascript:`` links), or plain text
(a ``.txt`` file) escaped and kept in its paragraphs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import structlog
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

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
    "privacy": ("Privacy policy", "HUTCH_PRIVACY_FILE"),
    "terms": ("Terms of service", "HUTCH_TERMS_FILE"),
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


def policy(kind: str, path: Path | None) -> Policy:
    """The page's text: the operator's file (re-read when it changes), else a notice that there is none."""
    title, setting = DEFAULTS[kind]
    if path is not None:
        try:
            stat = path.stat()
            return Policy(title, setting, _rendered(path, stat.st_mtime, stat.st_size), True)
        except OSError as exc:
            log.warning("policy file unreadable; showing the default text", setting=setting, error=str(exc))
    body = Markup(
        "<p>The operator of this service has not published its {} yet. Until they do, ask them (the "
        "support address is on their website) how your data is handled and which terms apply.</p>"
    ).format(title.lower())
    return Policy(title, setting, body, False)
