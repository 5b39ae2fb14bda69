"""The tests' fake OpenAI-compatible server alone in its own process: ``fake_upstream.py PORT [--think S]``.

A process of its own keeps the upstream off the event loops of the load generator and of Hutch. With
nothing scripted it echoes the last user message at once (no think time); ``--think SECONDS`` makes every
chat completion (streamed or not) wait that long first, as a model thinking, without holding anything but
a sleeping coroutine, so any number of calls think at once. Embeddings and the model list stay instant.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from common import ROOT

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one

from tests.fakes.llm import FakeLLMServer

THINKING_PATHS = frozenset({"/v1/chat/completions"})
KEEP_REQUESTS = 1000  # the fake records every request; nobody reads them here, so keep memory flat


class Think:
    """ASGI middleware: wait ``seconds`` before a chat completion, then let the fake answer it."""

    def __init__(self, app: ASGIApp, server: FakeLLMServer, seconds: float) -> None:
        self.app = app
        self.server = server
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if len(self.server.state.requests) > KEEP_REQUESTS:
                self.server.state.requests.clear()
            if self.seconds > 0 and scope["path"] in THINKING_PATHS:
                await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser(description="The fake OpenAI-compatible upstream of the benches.")
    parser.add_argument("port", type=int)
    parser.add_argument(
        "--think", type=float, default=0.0, metavar="SECONDS", help="delay of each chat completion"
    )
    args = parser.parse_args()
    server = FakeLLMServer()
    # BackgroundServer picks a random port in a thread; the bench needs a known port in the main thread.
    app = Think(server._app, server, args.think)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        backlog=4096,
        limit_concurrency=None,
    )


if __name__ == "__main__":
    main()
