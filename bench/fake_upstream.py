"""The tests' fake OpenAI-compatible server alone in its own process: ``fake_upstream.py PORT``.

A process of its own keeps the upstream off the event loops of the load generator and of Hutch. With
nothing scripted it echoes the last user message at once (no think time).
"""

from __future__ import annotations

import sys

import uvicorn

from common import ROOT

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one

from tests.fakes.llm import FakeLLMServer


def main() -> None:
    server = FakeLLMServer()
    # BackgroundServer picks a random port in a thread; the bench needs a known port in the main thread.
    uvicorn.run(server._app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
