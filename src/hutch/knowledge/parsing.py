"""Uploaded files to text sections: each section is the text under one heading path.

Accepted: plain text, Markdown, HTML and PDF. A file that cannot be read raises :class:`UnreadableDocument`
with a reason a person can act on; the document is then marked failed with it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from pypdf import PageObject, PdfReader
from pypdf.errors import LimitReachedError, PdfReadError

ACCEPTED = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
MEDIA_TYPES = {
    "text/plain": "txt",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/html": "html",
    "application/pdf": "pdf",
}
MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


MAX_PDF_PAGES = 5000


class UnreadableDocument(Exception):
    """The file's text cannot be extracted; the message says why."""


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]  # the heading path, outermost first
    text: str


def kind_of(filename: str, media_type: str | None) -> str | None:
    """``txt``, ``md``, ``html`` or ``pdf`` from the file name (or, failing that, its media type)."""
    suffix = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    if suffix in ACCEPTED:
        return ACCEPTED[suffix]
    if media_type:
        return MEDIA_TYPES.get(media_type.split(";")[0].strip().lower())
    return None


def parse(data: bytes, kind: str) -> list[Section]:
    if kind == "pdf":
        return _pdf(data)
    text = _decode(data)
    if kind == "html":
        return _markdown(_HtmlToMarkdown.convert(text))
    if kind == "md":
        return _markdown(text)
    return _plain(text)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _plain(text: str) -> list[Section]:
    text = text.strip()
    return [Section((), text)] if text else []


def _markdown(text: str) -> list[Section]:
    """Split at headings; each section keeps the path of headings above it."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            sections.append(Section(tuple(title for _, title in path), body))
        lines.clear()

    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else MARKDOWN_HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level = len(match.group(1))
        path = [(lvl, title) for lvl, title in path if lvl < level]
        path.append((level, match.group(2).strip()))
    flush()
    return sections


def _page_text(page: PageObject) -> str:
    # Decompressing the content first makes pypdf's size limit an error here: text extraction alone would
    # skip an oversized stream quietly, and the document would look merely empty.
    contents = page.get_contents()
    if contents is not None:
        contents.get_data()
    return (page.extract_text() or "").strip()


def _pdf(data: bytes) -> list[Section]:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableDocument("The PDF is password-protected; upload an unprotected copy.")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise UnreadableDocument(f"The PDF has more than {MAX_PDF_PAGES:,} pages; split it into parts.")
        pages = [_page_text(page) for page in reader.pages]
    except UnreadableDocument:
        raise
    except LimitReachedError:
        raise UnreadableDocument(
            "Part of the PDF expands to far more than its size when decompressed (a decompression bomb?); "
            "it was not read. Save the PDF again from its source and upload that copy."
        ) from None
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(
            f"The PDF cannot be read ({exc}); check that the file is a complete PDF."
        ) from None
    sections = [Section((f"Page {n}",), text) for n, text in enumerate(pages, start=1) if text]
    if not sections:
        raise UnreadableDocument(
            "The PDF has no text to extract (a scanned image?); upload a PDF with selectable text."
        )
    return sections


class _HtmlToMarkdown(HTMLParser):
    """Visible text of an HTML page, with its headings as Markdown headings and blocks as paragraphs."""

    SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg"})
    BLOCKS = frozenset(
        {"p", "div", "section", "article", "li", "tr", "br", "ul", "ol", "table", "pre", "blockquote"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.heading: int | None = None

    @classmethod
    def convert(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        parser.close()
        return re.sub(r"\n{3,}", "\n\n", "".join(parser.out))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.heading = int(tag[1])
            self.out.append("\n\n" + "#" * self.heading + " ")
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self.heading = None
            self.out.append("\n\n")
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        text = re.sub(r"\s+", " ", data)
        if self.heading is not None:
            text = text.replace("\n", " ")
        self.out.append(text)
