"""Local search providers speaking their real wire formats: SearXNG's JSON API, Brave Search and Tavily.

One server answers all three (their paths and methods differ). It records every request and answers from
a few pages it knows, or with the status or delay a test sets.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

BRAVE_KEY = "BSA-test-brave-key"
TAVILY_KEY = "tvly-test-tavily-key"


@dataclass(frozen=True)
class Page:
    title: str
    url: str
    snippet: str


PAGES = [
    Page(
        "Hutch — run your own AI assistant business",
        "https://hutch.example/",
        "Hutch is an open-source platform to run AI assistants for your customers.",
    ),
    Page(
        "Self-hosting Hutch",
        "https://docs.hutch.example/self-hosting",
        "Install Hutch on one machine with PostgreSQL; " + "details " * 200,
    ),
    Page("Hutch on the forum", "https://forum.example/t/hutch", "People talk about Hutch."),
    Page("Rabbit hutches", "https://pets.example/hutches", "A hutch is a cage for rabbits."),
    Page("Hutch (furniture)", "https://furniture.example/hutch", "A cabinet with open shelves."),
    Page("Hutch news", "https://news.example/hutch", "Hutch 1.0 is out."),
    Page("Starsky & Hutch", "https://films.example/starsky", "A police series."),
]


@dataclass
class SearchRequest:
    provider: str
    method: str
    path: str
    headers: dict[str, str]
    query: str
    body: dict[str, Any] | None


@dataclass
class FakeSearchState:
    requests: list[SearchRequest] = field(default_factory=list)
    status: int = 200  # answer this instead of results
    delay: float = 0.0  # seconds before answering
    html: bool = False  # answer a web page instead (a proxy's error page, a misconfigured instance)
    pages: list[Page] = field(default_factory=lambda: list(PAGES))


class FakeSearchServer(BackgroundServer):
    def __init__(self) -> None:
        self.state = FakeSearchState()
        app = Starlette(
            routes=[
                Route("/search", self._searxng, methods=["GET"]),
                Route("/search", self._tavily, methods=["POST"]),
                Route("/res/v1/web/search", self._brave, methods=["GET"]),
            ]
        )
        super().__init__(app)

    def reset(self) -> None:
        self.state = FakeSearchState()

    @property
    def requests(self) -> list[SearchRequest]:
        return self.state.requests

    async def _trouble(self) -> Response | None:
        if self.state.delay:
            await asyncio.sleep(self.state.delay)
        if self.state.status != 200:
            return JSONResponse({"error": "internal error"}, status_code=self.state.status)
        if self.state.html:
            return Response("<html><body>Please wait…</body></html>", media_type="text/html")
        return None

    def _record(self, provider: str, request: Request, query: str, body: dict[str, Any] | None) -> None:
        self.state.requests.append(
            SearchRequest(provider, request.method, request.url.path, dict(request.headers), query, body)
        )

    async def _searxng(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        self._record("searxng", request, query, None)
        if request.query_params.get("format") != "json":
            return Response("<html>results</html>", media_type="text/html")  # SearXNG's default page
        if (trouble := await self._trouble()) is not None:
            return trouble
        results = [
            {
                "url": page.url,
                "title": page.title,
                "content": page.snippet,
                "engine": "duckduckgo",
                "parsed_url": ["https", page.url.split("/")[2], "/", "", "", ""],
                "template": "default.html",
                "engines": ["duckduckgo", "brave"],
                "positions": [n + 1],
                "score": 2.0 / (n + 1),
                "category": "general",
            }
            for n, page in enumerate(self.state.pages)
        ]
        return JSONResponse(
            {
                "query": query,
                "number_of_results": 0,
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )

    async def _brave(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        self._record("brave", request, query, None)
        if request.headers.get("x-subscription-token") != BRAVE_KEY:
            return JSONResponse(
                {
                    "type": "ErrorResponse",
                    "error": {
                        "code": "SUBSCRIPTION_TOKEN_INVALID",
                        "status": 422,
                        "detail": "Invalid token.",
                    },
                },
                status_code=422,
            )
        if (trouble := await self._trouble()) is not None:
            return trouble
        count = int(request.query_params.get("count", "20"))
        results = [
            {
                "title": page.title.replace("Hutch", "<strong>Hutch</strong>"),
                "url": page.url,
                "is_source_local": False,
                "is_source_both": False,
                "description": page.snippet.replace("Hutch", "<strong>Hutch</strong>"),
                "profile": {"name": page.url.split("/")[2], "url": page.url},
                "language": "en",
                "family_friendly": True,
                "type": "search_result",
                "meta_url": {"scheme": "https", "netloc": page.url.split("/")[2], "path": "/hutch"},
            }
            for page in self.state.pages[:count]
        ]
        return JSONResponse(
            {
                "query": {"original": query, "more_results_available": True},
                "mixed": {"type": "mixed", "main": [{"type": "web", "index": 0, "all": False}]},
                "type": "search",
                "web": {"type": "search", "results": results, "family_friendly": True},
            }
        )

    async def _tavily(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        self._record("tavily", request, str(body.get("query", "")), body)
        if request.headers.get("authorization") != f"Bearer {TAVILY_KEY}":
            return JSONResponse(
                {"detail": {"error": "Unauthorized: missing or invalid API key."}}, status_code=401
            )
        if (trouble := await self._trouble()) is not None:
            return trouble
        count = int(body.get("max_results", 5))
        results = [
            {"url": page.url, "title": page.title, "content": page.snippet, "score": 0.9, "raw_content": None}
            for page in self.state.pages[:count]
        ]
        return JSONResponse(
            {
                "query": body.get("query"),
                "follow_up_questions": None,
                "answer": None,
                "images": [],
                "results": results,
                "response_time": 0.42,
            }
        )
