"""`hutch runtime`: one agent served on its own, with the same engine as shared agents.

The platform calls it with a bearer token of its own (the runtime knows only the token's hash) and sends the
recent history with each request: the runtime keeps nothing but its workspace (the agent's long-term memory
files). It answers OpenAI's Chat Completions, streamed or not, and ``/healthz``.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Header
from fastapi.responses import JSONResponse, StreamingResponse

from hutch import __version__
from hutch.core.errors import Unauthorized, install_error_handlers, openai_error
from hutch.core.metrics import Metrics
from hutch.core.security import sha256_hex
from hutch.engine.catalog import load_catalog
from hutch.engine.deps import EngineDeps
from hutch.engine.gateway import LLMGateway
from hutch.engine.openai_schemas import ChatCompletion, ChatCompletionRequest
from hutch.engine.openai_translate import chunk, completion, to_engine, tool_definitions, usage_chunk
from hutch.engine.prompt import PromptContext, build_instructions
from hutch.engine.runner import Engine, TextDelta, TurnOutcome, TurnRequest
from hutch.runtimes.config import RuntimeConfig
from hutch.runtimes.workspace import Workspace, WorkspaceFacts
from hutch.settings import Settings

CHANNEL = "dedicated runtime"
UPSTREAM_FAILED = 502


class Runtime:
    def __init__(self, config: RuntimeConfig, workspace: Workspace, settings: Settings) -> None:
        self.config = config
        self.workspace = workspace
        self.settings = settings
        self.agent = config.agent_row()
        self.llm = LLMGateway(settings, load_catalog(settings))
        self.engine = Engine(self.llm, Metrics(), settings)
        self.facts = WorkspaceFacts(workspace)

    def authorize(self, authorization: str | None) -> None:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(sha256_hex(token), self.config.gateway_token_sha256):
            raise Unauthorized("This runtime answers its platform only.")

    def request(self, body: ChatCompletionRequest) -> TurnRequest:
        system, history, prompt = to_engine(body.messages)
        end_user = f"api:{body.user}" if body.user else None
        now = datetime.now(UTC)
        keys = self.config.credentials()
        primary = self.llm.resolve(self.agent.model, keys)
        fallback = self.llm.resolve(self.agent.fallback_model, keys) if self.agent.fallback_model else None
        identity = self.workspace.identity()
        extra = [f"Notes you keep about yourself:\n{identity}"] if identity else []
        caller = [s for s in system if s.strip()]
        if caller:
            extra.append("Instructions from the caller:\n" + "\n".join(caller))
        instructions = build_instructions(
            PromptContext(
                agent=self.agent,
                org_name=self.config.org_name,
                channel=CHANNEL,
                now=now,
                facts=self.workspace.facts(end_user) if end_user else [],
                extra=extra,
            )
        )
        deps = EngineDeps(
            facts=self.facts,
            settings=self.settings,
            agent=self.agent,
            org_id=self.agent.org_id,
            org_name=self.config.org_name,
            end_user=end_user,
            conversation_id=None,
            channel=CHANNEL,
            now=now,
        )
        return TurnRequest(
            instructions=instructions,
            history=history,
            prompt=prompt,
            deps=deps,
            primary=primary,
            fallback=fallback,
            tools=[t for t in self.agent.tools if t != "check_balance"],  # the balance lives on the platform
            temperature=float(self.agent.temperature) if body.temperature is None else body.temperature,
            max_tokens=body.max_completion_tokens or body.max_tokens or self.agent.max_tokens,
            external_tools=tool_definitions(body.tools),
        )


def create_runtime_app(config: RuntimeConfig, workspace_dir: Path, settings: Settings) -> FastAPI:
    runtime = Runtime(config, Workspace(workspace_dir), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await runtime.llm.close()  # the model clients' connections

    app = FastAPI(title=f"Hutch runtime: {config.agent.name}", version=__version__, lifespan=lifespan)
    install_error_handlers(app)

    async def platform_only(authorization: Annotated[str | None, Header()] = None) -> None:
        runtime.authorize(authorization)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "agent": config.agent.slug}

    @app.post("/v1/chat/completions", dependencies=[Depends(platform_only)], response_model=ChatCompletion)
    async def chat_completions(
        body: ChatCompletionRequest,
    ) -> ChatCompletion | JSONResponse | StreamingResponse:
        request = runtime.request(body)
        call_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            events = _stream(runtime, request, call_id, created, body)
            return StreamingResponse(events, media_type="text/event-stream")
        outcome = await runtime.engine.run(request)
        if not outcome.ok:
            error = openai_error(
                UPSTREAM_FAILED, outcome.error or "The model did not answer.", "upstream_error"
            )
            return JSONResponse(error, UPSTREAM_FAILED)
        return completion(call_id, created, outcome.model or config.agent.model, outcome)

    return app


async def _stream(
    runtime: Runtime, request: TurnRequest, call_id: str, created: int, body: ChatCompletionRequest
) -> AsyncIterator[str]:
    ids = (call_id, created, runtime.agent.model)
    yield chunk(*ids, {"role": "assistant", "content": ""})
    outcome: TurnOutcome | None = None
    async for event in runtime.engine.stream(request):
        if isinstance(event, TextDelta):
            yield chunk(*ids, {"content": event.text})
        else:
            outcome = event
    assert outcome is not None
    yield chunk(*ids, {}, outcome.finish_reason)
    if body.stream_options is not None and body.stream_options.include_usage:
        yield usage_chunk(*ids, outcome)
    yield "data: [DONE]\n\n"
