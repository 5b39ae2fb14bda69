"""Web search for agents, through the provider the operator configures: SearXNG, Brave Search or Tavily.

One small class per provider speaks its API and answers a few results (title, address, snippet). Their
addresses and key come from settings, never from users, so they are trusted like the model providers'.
The key travels in a header only, never in a URL, so neither logs nor errors carry it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from hutch.settings import Settings, WebSearchProvider

MAX_RESULTS = 5
SNIPPET_MAX_CHARS = 400
TITLE_MAX_CHARS = 200
URL_MAX_CHARS = 500
QUERY_MAX_CHARS = 400

BRAVE_API_BASE = "https://api.search.brave.com"
TAVILY_API_BASE = "https://api.tavily.com"

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


class WebSearchFailed(Exception):
    """The provider could not answer (down, slow, refused, or an answer that is not its format)."""


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


class WebSearch(Protocol):
    """A search engine answering a query with at most ``count`` results, best first."""

    async def search(self, query: str, count: int) -> list[SearchResult]: ...


def plain(text: Any, limit: int) -> str:
    """Text without markup or runs of spaces, cut to ``limit`` characters (Brave marks matches in HTML)."""
    if not isinstance(text, str):
        return ""
    flat = _SPACE.sub(" ", html.unescape(_TAG.sub("", text))).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def member(body: Any, key: str) -> Any:
    return body.get(key) if isinstance(body, dict) else None


def to_results(items: Any, count: int, *, snippet_key: str) -> list[SearchResult]:
    if not isinstance(items, list):
        raise WebSearchFailed("the answer holds no list of results")
    results: list[SearchResult] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            continue
        results.append(
            SearchResult(
                title=plain(item.get("title"), TITLE_MAX_CHARS) or url[:URL_MAX_CHARS],
                url=url[:URL_MAX_CHARS],
                snippet=plain(item.get(snippet_key), SNIPPET_MAX_CHARS),
            )
        )
        if len(results) == count:
            break
    return results


class HttpSearch:
    """What the providers share: one request with a timeout; any failure is a :class:`WebSearchFailed`."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            # A client per search: searches are rare next to model calls, and a client would otherwise
            # outlive the event loop that opened its connections.
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                response = await client.request(method, self.base_url + path, **kwargs)
        except httpx.TimeoutException:
            raise WebSearchFailed("the search service did not answer in time") from None
        except httpx.HTTPError as exc:
            raise WebSearchFailed(f"the search service could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise WebSearchFailed(f"the search service answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise WebSearchFailed("the search service answered something other than JSON") from None


class SearxngSearch(HttpSearch):
    """A SearXNG instance's JSON API (its settings must list ``json`` among ``search.formats``)."""

    async def search(self, query: str, count: int) -> list[SearchResult]:
        body = await self._json(
            "GET", "/search", params={"q": query, "format": "json"}, headers={"Accept": "application/json"}
        )
        return to_results(member(body, "results"), count, snippet_key="content")


class BraveSearch(HttpSearch):
    """Brave Search's web search API; the key goes in ``X-Subscription-Token``."""

    def __init__(self, base_url: str, timeout: float, api_key: str) -> None:
        super().__init__(base_url, timeout)
        self._api_key = api_key

    async def search(self, query: str, count: int) -> list[SearchResult]:
        body = await self._json(
            "GET",
            "/res/v1/web/search",
            params={"q": query, "count": count},
            headers={"Accept": "application/json", "X-Subscription-Token": self._api_key},
        )
        web = member(body, "web")
        if isinstance(body, dict) and web is None:
            return []  # Brave leaves out the web section when nothing matched
        return to_results(member(web, "results"), count, snippet_key="description")


class TavilySearch(HttpSearch):
    """Tavily's search API; the key goes in ``Authorization: Bearer``."""

    def __init__(self, base_url: str, timeout: float, api_key: str) -> None:
        super().__init__(base_url, timeout)
        self._api_key = api_key

    async def search(self, query: str, count: int) -> list[SearchResult]:
        body = await self._json(
            "POST",
            "/search",
            json={"query": query, "max_results": count, "search_depth": "basic"},
            headers={"Authorization": f"Bearer {self._api_key}"},
        )
        return to_results(member(body, "results"), count, snippet_key="content")


def build_web_search(settings: Settings) -> WebSearch | None:
    """The configured provider's client, or None when the operator has set none up."""
    provider = settings.web_search_provider
    timeout = settings.web_search_timeout_seconds
    key = settings.web_search_api_key.get_secret_value() if settings.web_search_api_key else ""
    if provider is WebSearchProvider.SEARXNG and settings.web_search_url:
        return SearxngSearch(settings.web_search_url, timeout)
    if provider is WebSearchProvider.BRAVE and key:
        return BraveSearch(settings.web_search_url or BRAVE_API_BASE, timeout, key)
    if provider is WebSearchProvider.TAVILY and key:
        return TavilySearch(settings.web_search_url or TAVILY_API_BASE, timeout, key)
    return None


# One query at each provider's list price, in micro-USD (HUTCH_WEB_SEARCH_COST_MICRO_USD overrides).
LIST_PRICE_MICRO_USD = {
    WebSearchProvider.SEARXNG: 0,  # the operator's own instance
    WebSearchProvider.BRAVE: 5_000,
    WebSearchProvider.TAVILY: 8_000,
}


def search_cost_micro_usd(settings: Settings) -> int:
    if settings.web_search_cost_micro_usd is not None:
        return settings.web_search_cost_micro_usd
    provider = settings.web_search_provider
    return LIST_PRICE_MICRO_USD[provider] if provider is not None else 0


def results_for_model(query: str, results: list[SearchResult]) -> str:
    """Numbered results the model can cite, with their addresses."""
    if not results:
        return f"No results for {query!r}."
    lines = [f"Results for {query!r} (cite the addresses you use):"]
    for number, result in enumerate(results, 1):
        lines.append(f"{number}. {result.title}\n   {result.url}\n   {result.snippet}".rstrip())
    return "\n".join(lines)
