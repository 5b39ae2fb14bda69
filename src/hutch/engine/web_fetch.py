"""The ``web_fetch`` tool: reads a page through the egress guard and gives the model its text.

The model chooses the URL, so the page is fetched only through :func:`hutch.core.egress.fetch`
(public addresses, or what ``HUTCH_EGRESS_ALLOW`` opens; every redirect checked). HTML becomes Markdown,
JSON is indented, other text is returned as it is; a refusal or a failure reaches the model as a
``ModelRetry`` with the reason, so it can tell the user or try another address.
"""

from __future__ import annotations

import json
import re

import anyio
from bs4 import BeautifulSoup
from markdownify import MarkdownConverter
from pydantic_ai import ModelRetry

from hutch.core.egress import EgressError, EgressPolicy, EgressResponse, fetch

WEB_FETCH_MAX_CHARS = 20_000
WEB_FETCH_MAX_BYTES = 2 * 1024 * 1024
WEB_FETCH_TIMEOUT_SECONDS = 15
ACCEPT = "text/markdown, text/html;q=0.9, text/*;q=0.8, application/json;q=0.8, */*;q=0.1"
TEXT_TYPES = ("text/", "application/json", "application/xhtml+xml", "application/xml", "application/rss+xml")
HTML_TYPES = ("text/html", "application/xhtml+xml")
DROPPED_TAGS = ("script", "style", "noscript", "template", "svg", "iframe")
EXCESSIVE_NEWLINES = re.compile(r"\n{3,}")
# Converting HTML is CPU work in a thread; a few at once leave the other threads to everything else.
CONVERSIONS = anyio.CapacityLimiter(4)


async def read_page(url: str, policy: EgressPolicy) -> dict[str, str]:
    """The page at ``url`` as ``{url, title, content}``, its content cut at WEB_FETCH_MAX_CHARS."""
    try:
        page = await fetch(
            url.strip(),
            policy,
            headers={"Accept": ACCEPT},
            time_limit=WEB_FETCH_TIMEOUT_SECONDS,
            max_bytes=WEB_FETCH_MAX_BYTES,
        )
    except EgressError as exc:
        raise ModelRetry(f"Failed to fetch {url}: {exc}") from None
    if page.status_code >= 400:
        raise ModelRetry(f"Failed to fetch {url}: the server answered HTTP {page.status_code}")
    title, content = await _as_text(page)
    content = EXCESSIVE_NEWLINES.sub("\n\n", content).strip()
    if len(content) > WEB_FETCH_MAX_CHARS:
        content = content[:WEB_FETCH_MAX_CHARS] + "\n\n[Content truncated]"
    return {"url": page.url, "title": title, "content": content}


async def _as_text(page: EgressResponse) -> tuple[str, str]:
    media_type = page.media_type
    if media_type and not media_type.startswith(TEXT_TYPES):
        return "", f"[{media_type}, {len(page.content)} bytes: not text, so not shown]"
    text = page.text
    if not media_type or media_type in HTML_TYPES:
        try:
            async with CONVERSIONS:
                return await anyio.to_thread.run_sync(_html_to_markdown, text)
        except RecursionError:
            raise ModelRetry(f"Failed to read {page.url}: the HTML is nested too deeply") from None
    if media_type == "application/json":
        try:
            return "", "```json\n" + json.dumps(json.loads(text), indent=2)[:WEB_FETCH_MAX_CHARS] + "\n```"
        except (ValueError, RecursionError):
            return "", text
    return "", text


def _html_to_markdown(html: str) -> tuple[str, str]:
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup([*DROPPED_TAGS, "title"]):  # the title is returned on its own
        tag.decompose()
    return title, MarkdownConverter(heading_style="ATX").convert_soup(soup)
