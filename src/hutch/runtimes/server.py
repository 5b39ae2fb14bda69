"""`hutch runtime`: one agent served on its own, with the same engine as shared agents.

The platform calls it with a bearer token of its own (the runtime knows only the token's hash) and sends the
recent history with each request: the runtime keeps nothing but its workspace (the agent's long-term memory
files). It answers OpenAI's Chat Completions, streamed or not, and ``/healthz``.

The platform's own turns carry what the plan allows (``hutch.runtimes.wire``): with the browser, the agent
drives a Chromium of this process (a bounded :class:`BrowserPool`, one context per conversation or task,
behind the platform's egress rules from the config), and the answer streams each screenshot back as it is
taken, then the outcome with its tool calls.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from pydantic import ValidationError

from hutch import __version__
from hutch.browser.agent_browser import AgentBrowser, BrowserScope, task_browser_key
from hutch.browser.pool import BrowserPool
from hutch.core.errors import BadRequest, Unauthorized, install_error_handlers, openai_error
from hutch.core.metrics import Metrics
from hutch.core.security import sha256_hex
from hutch.engine.browser_tools import BROWSER
from hutch.engine.catalog import load_catalog
from hutch.engine.deps import EngineDeps
from hutch.engine.gateway import LLMGateway
from hutch.engine.metering import ToolMeter
from hutch.engine.openai_schemas import ChatCompletion, ChatCompletionRequest
from hutch.engine.openai_translate import chunk, completion, to_engine, tool_definitions, usage_chunk
from hutch.engine.prompt import PromptContext, build_instructions
from hutch.engine.runner import Engine, TextDelta, TurnOutcome, TurnRequest
from hutch.engine.tools import cost_per_call
from hutch.runtimes.browser import ScreenSink, download_event, sse_event
from hutch.runtimes.config import RuntimeConfig
from hutch.runtimes.wire import (
    CLOSE_PATH,
    EXTENSION,
    KEEPALIVE_SECONDS,
    OUTCOME_EVENT,
    CloseTaskBrowser,
    PlatformTurn,
)
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
        # Chromium on this host, started when the agent first opens a page; the platform's egress rules.
        self.browsers = BrowserPool(settings.model_copy(update={"egress_allow": list(config.egress_allow)}))

    def authorize(self, authorization: str | None) -> None:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(sha256_hex(token), self.config.gateway_token_sha256):
            raise Unauthorized("This runtime answers its platform only.")

    def request(
        self, body: ChatCompletionRequest, allowed: PlatformTurn | None = None, sink: ScreenSink | None = None
    ) -> TurnRequest:
        """The engine's request; ``allowed``: what the platform's plan allows this turn (the browser, whose
        screens go to ``sink``, and metered tool calls)."""
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
        browser = self.browser(allowed, sink)
        tools = [t for t in self.agent.tools if t != "check_balance"]  # the balance lives on the platform
        if browser is None and BROWSER in tools:
            tools.remove(BROWSER)
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
            browser=browser,
            sees_screen=primary.spec.computer_use,
        )
        return TurnRequest(
            instructions=instructions,
            history=history,
            prompt=prompt,
            deps=deps,
            primary=primary,
            fallback=fallback,
            tools=tools,
            temperature=float(self.agent.temperature) if body.temperature is None else body.temperature,
            max_tokens=body.max_completion_tokens or body.max_tokens or self.agent.max_tokens,
            external_tools=tool_definitions(body.tools),
            meter=ToolMeter(
                remaining=allowed.tool_calls_left if allowed else None,
                limit=allowed.tool_calls_limit if allowed else None,
                cost_of=cost_per_call(self.settings),
            ),
        )

    def browser(self, allowed: PlatformTurn | None, sink: ScreenSink | None) -> AgentBrowser | None:
        """The turn's browser on this runtime's pool, when the agent enables it and the plan allows it."""
        grant = allowed.browser if allowed else None
        if grant is None or sink is None or BROWSER not in self.agent.tools:
            return None
        scope = BrowserScope(
            org_id=self.agent.org_id,
            agent_id=self.agent.id,
            conversation_id=grant.conversation_id,
            task_id=grant.task_id,
            step=grant.step,
            reference=grant.reference or uuid.uuid4().hex,
        )
        max_bytes = self.settings.attachment_max_mb * 1024 * 1024
        return AgentBrowser(self.browsers, sink, scope, grant.at_once, max_bytes)


def create_runtime_app(config: RuntimeConfig, workspace_dir: Path, settings: Settings) -> FastAPI:
    runtime = Runtime(config, Workspace(workspace_dir), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await runtime.browsers.close()
        await runtime.llm.close()  # the model clients' connections

    app = FastAPI(title=f"Hutch runtime: {config.agent.name}", version=__version__, lifespan=lifespan)
    install_error_handlers(app)

    async def platform_only(authorization: Annotated[str | None, Header()] = None) -> None:
        runtime.authorize(authorization)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "agent": config.agent.slug}

    @app.post(CLOSE_PATH, dependencies=[Depends(platform_only)])
    async def close_task_browser(body: CloseTaskBrowser) -> dict[str, bool]:
        """The task ended: its browser closes (``closed`` is false when none was open)."""
        return {"closed": await runtime.browsers.close_session(task_browser_key(body.task_id))}

    @app.post("/v1/chat/completions", dependencies=[Depends(platform_only)], response_model=ChatCompletion)
    async def chat_completions(
        body: ChatCompletionRequest,
    ) -> ChatCompletion | JSONResponse | StreamingResponse:
        if body.model_extra and EXTENSION in body.model_extra:  # the platform's own turn
            try:
                allowed = PlatformTurn.model_validate(body.model_extra[EXTENSION])
            except ValidationError as exc:
                raise BadRequest(f"Unusable {EXTENSION!r} field: {exc.errors()[0]['msg']}") from None
            sink = ScreenSink()
            request = runtime.request(body, allowed, sink)
            return StreamingResponse(_for_platform(runtime, request, sink), media_type="text/event-stream")
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


async def _for_platform(runtime: Runtime, request: TurnRequest, sink: ScreenSink) -> AsyncIterator[str]:
    """The platform's turn as events (``hutch.runtimes.wire``): each screen as it is taken, the files
    downloaded, then the outcome; a comment every ``KEEPALIVE_SECONDS`` while nothing else is said."""

    async def work() -> TurnOutcome:
        try:
            return await runtime.engine.run(request)
        finally:
            sink.events.put_nowait(None)

    running = asyncio.create_task(work())
    browser = request.deps.browser if isinstance(request.deps.browser, AgentBrowser) else None
    try:
        while True:
            try:
                event = await asyncio.wait_for(sink.events.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": working\n\n"
                continue
            if event is None:
                break
            yield event
        outcome = await running
        for file in browser.downloads if browser else []:
            yield download_event(file)
        done = {
            "ok": outcome.ok,
            "error": outcome.error,
            "text": outcome.text,
            "model": outcome.model,
            "input_tokens": outcome.input_tokens,
            "output_tokens": outcome.output_tokens,
            "tool_calls": outcome.tool_calls,
            "metered_tool_calls": outcome.metered_tool_calls,
        }
        yield sse_event(OUTCOME_EVENT, done)
        yield "data: [DONE]\n\n"
    finally:
        if not running.done():  # the platform went away: the turn stops with it
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        if browser is not None and browser.scope.conversation_id is None and browser.scope.task_id is None:
            await runtime.browsers.close_session(browser.scope.key)  # a turn kept nowhere: nothing comes back
