"""Runs one turn of a conversation with pydantic-ai: tools, retries, the fallback model, and the apology.

Provider SDKs retry timeouts, 429 and 5xx with backoff; when the agent's model still fails, its fallback
model answers; when that fails too, the user gets a short apology and the outcome carries the error, so
the caller stores it and nothing the user sent is lost.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import AgentRunError, DeferredToolRequests, RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import (
    BinaryContent,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    ToolReturnPart,
    UserContent,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestContext, ModelRequestParameters
from pydantic_ai.models.fallback import FallbackModel
from pydantic_ai.run import AgentRunResultEvent
from pydantic_ai.tools import Tool, ToolDefinition
from pydantic_ai.toolsets import ExternalToolset, FunctionToolset
from pydantic_ai.usage import UsageLimits

from hutch.core.logging import redact_text
from hutch.core.metrics import Metrics
from hutch.engine.computer_use import screen_interface, with_computer
from hutch.engine.deps import EngineDeps
from hutch.engine.gateway import LLMGateway, ResolvedModel
from hutch.engine.metering import MeteredToolset, ToolMeter
from hutch.engine.tools import TOOLS
from hutch.settings import Settings

log = structlog.get_logger(__name__)

APOLOGY = "Sorry, I can't answer right now: the AI service did not respond. Please try again in a moment."
MAX_MODEL_REQUESTS_PER_TURN = 10  # a tool loop that keeps calling stops here
RECORDED_METADATA = frozenset({"tool", "ok", "ms", "screenshot"})  # what a tool answer adds to its record


@dataclass
class TurnRequest:
    instructions: str
    history: list[ModelMessage]
    prompt: str | None  # the new user message; None when ``history`` already ends with it
    deps: EngineDeps
    primary: ResolvedModel
    fallback: ResolvedModel | None
    tools: list[str]
    temperature: float
    max_tokens: int
    external_tools: list[ToolDefinition] = field(default_factory=list)  # the caller's own tools
    # The org's connected tools (MCP servers, webhook tools) the agent enables, built for this turn.
    extra_tools: list[Tool[EngineDeps]] = field(default_factory=list)
    meter: ToolMeter = field(default_factory=ToolMeter)  # times the turn's tool calls, meters outside ones
    # Images sent with the prompt (for models the catalog marks ``vision``): one user message with the text.
    media: list[BinaryContent] = field(default_factory=list)
    # Holds what one more model request of the tool loop may cost before it is made (the first was held with
    # the turn's admission): None when held, else why the turn must stop (``hutch.billing.holds``).
    hold_more: HoldMore | None = None


HoldMore = Callable[[], Awaitable[str | None]]


class SpendStopped(Exception):
    """The tool loop's next model request would pass the key's budget or the org's credits."""

    def __init__(self, notice: str, messages: list[ModelMessage]) -> None:
        super().__init__(notice)
        self.notice = notice
        self.messages = messages  # the run's messages so far, its responses' usage included


@dataclass
class _HoldEachRequest(AbstractCapability[EngineDeps]):
    """Before each model request the agent makes past the ones already held, hold what it may cost."""

    hold_more: HoldMore
    held: int  # requests already held (the turn's first, when the agent makes it)

    async def before_model_request(
        self, ctx: RunContext[EngineDeps], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        if self.held > 0:
            self.held -= 1
            return request_context
        refused = await self.hold_more()
        if refused is not None:
            raise SpendStopped(refused, list(request_context.messages))
        return request_context


@dataclass(frozen=True)
class ExternalCall:
    id: str
    name: str
    arguments: str  # JSON, as the model produced it


@dataclass
class TurnOutcome:
    text: str
    ok: bool
    error: str | None = None
    model: str | None = None  # catalog id of the model that answered
    byok: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micro_usd: int = 0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    external_calls: list[ExternalCall] = field(default_factory=list)
    metered_tool_calls: int = 0  # calls to tools that reach outside, counted on the org's usage
    tool_cost_micro_usd: int = 0  # their cost, also in ``cost_micro_usd``

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.external_calls else "stop"


@dataclass(frozen=True)
class TextDelta:
    text: str


StreamEvent = TextDelta | TurnOutcome

FirstRequest = tuple[list[ModelMessage], ModelRequestParameters]  # the messages and the tools offered

RECOVERABLE = (AgentRunError, ExceptionGroup, httpx.HTTPError, TimeoutError, OSError)


class Engine:
    def __init__(self, llm: LLMGateway, metrics: Metrics, settings: Settings) -> None:
        self.llm = llm
        self.metrics = metrics
        self.settings = settings

    def _model(self, request: TurnRequest) -> Model:
        primary = self.llm.build(
            request.primary, temperature=request.temperature, max_tokens=request.max_tokens
        )
        if request.fallback is None:
            return primary
        fallback = self.llm.build(
            request.fallback, temperature=request.temperature, max_tokens=request.max_tokens
        )
        return FallbackModel(primary, fallback)

    def _agent(self, request: TurnRequest, model: Model, held: int) -> PydanticAgent[EngineDeps, Any]:
        """The agent that runs the tool loop; ``held``: its model requests already held (see
        :class:`_HoldEachRequest`)."""
        output_type: Any = [str, DeferredToolRequests] if request.external_tools else str
        holds = [_HoldEachRequest(request.hold_more, held)] if request.hold_more is not None else []
        return PydanticAgent(
            model,
            instructions=request.instructions,
            deps_type=EngineDeps,
            toolsets=[
                MeteredToolset(FunctionToolset(self._tools(request)), request.meter),
                *([ExternalToolset(request.external_tools)] if request.external_tools else []),
            ],
            output_type=output_type,
            retries=2,
            capabilities=holds,
        )

    def _tools(self, request: TurnRequest) -> list[Tool[EngineDeps]]:
        strict = request.primary.strict_tools and (request.fallback is None or request.fallback.strict_tools)
        tools = TOOLS.build(request.tools, self.settings, strict=strict) + request.extra_tools
        interface = screen_interface(request.primary, request.fallback)
        if request.deps.browser is not None and interface is not None:
            return with_computer(tools, strict, interface)  # the browser as the provider's computer tool
        return tools

    def _first_request(self, request: TurnRequest) -> FirstRequest | None:
        """The turn's first model request, made directly: most turns end with its answer, and the agent
        graph costs more CPU than the call itself. None when the turn resumes after tool results."""
        if request.prompt is None:
            return None
        prompt = ModelRequest(
            parts=[UserPromptPart(user_content(request))], instructions=request.instructions
        )
        parameters = ModelRequestParameters(
            function_tools=[tool.tool_def for tool in self._tools(request)] + request.external_tools,
            output_mode="text",
            allow_text_output=True,
        )
        return [*request.history, prompt], parameters

    @staticmethod
    def _settled(request: TurnRequest, response: ModelResponse) -> bool:
        """Whether the first answer ends the turn: text, or calls only to the caller's own tools.

        Calls to built-in tools, and empty answers (which the agent asks again for), go on in the agent.
        """
        calls = [part for part in response.parts if isinstance(part, ToolCallPart)]
        if calls:
            external = {tool.name for tool in request.external_tools}
            return all(call.tool_name in external for call in calls)
        return bool(response.text)

    async def run(self, request: TurnRequest) -> TurnOutcome:
        try:
            model = self._model(request)
            history, prompt, earlier = request.history, request.prompt, []
            first = self._first_request(request)
            if first is not None:
                messages, parameters = first
                response = await model.request(messages, None, parameters)
                if self._settled(request, response):
                    return self._succeeded(request, [response])
                history, prompt, earlier = [*messages, response], None, [response]
            result = await self._agent(request, model, held=1 - len(earlier)).run(
                prompt,
                message_history=history,
                deps=request.deps,
                usage_limits=UsageLimits(request_limit=MAX_MODEL_REQUESTS_PER_TURN - len(earlier)),
            )
        except SpendStopped as stopped:
            return self._stopped(request, [*earlier, *stopped.messages[len(history) :]], stopped.notice)
        except RECOVERABLE as exc:
            return self._failed(request, exc)
        return self._succeeded(request, [*earlier, *result.new_messages()], result.output)

    async def stream(self, request: TurnRequest) -> AsyncIterator[StreamEvent]:
        """Text as it arrives, then the outcome (always last, also after a failure)."""
        streamed = False
        try:
            model = self._model(request)
            history, prompt, earlier = request.history, request.prompt, []
            first = self._first_request(request)
            if first is not None:
                messages, parameters = first
                async with model.request_stream(messages, None, parameters) as response_stream:
                    async for event in response_stream:
                        if text := text_of_event(event):
                            streamed = True
                            yield TextDelta(text)
                response = response_stream.get()
                if self._settled(request, response):
                    yield self._succeeded(request, [response])
                    return
                history, prompt, earlier = [*messages, response], None, [response]
            async with self._agent(request, model, held=1 - len(earlier)).run_stream_events(
                prompt,
                message_history=history,
                deps=request.deps,
                usage_limits=UsageLimits(request_limit=MAX_MODEL_REQUESTS_PER_TURN - len(earlier)),
            ) as events:
                async for agent_event in events:
                    if isinstance(agent_event, AgentRunResultEvent):
                        result = agent_event.result
                        yield self._succeeded(request, [*earlier, *result.new_messages()], result.output)
                        return
                    if text := text_of_event(agent_event):
                        streamed = True
                        yield TextDelta(text)
        except SpendStopped as stopped:
            outcome = self._stopped(request, [*earlier, *stopped.messages[len(history) :]], stopped.notice)
            yield TextDelta(("\n\n" if streamed else "") + outcome.text)
            yield outcome
        except RECOVERABLE as exc:
            outcome = self._failed(request, exc)
            if not streamed:
                yield TextDelta(outcome.text)
            yield outcome

    def _succeeded(self, request: TurnRequest, new: list[ModelMessage], output: Any = None) -> TurnOutcome:
        """The outcome of the turn's new messages; ``output`` is the agent's, None when the first answer
        settled the turn."""
        outcome = TurnOutcome(text="", ok=True)
        answered_by = request.primary
        for message in new:
            if isinstance(message, ModelResponse):
                resolved = self._which(request, message.model_name)
                answered_by = resolved
                usage = message.usage
                outcome.input_tokens += usage.input_tokens
                outcome.output_tokens += usage.output_tokens
                outcome.cost_micro_usd += resolved.spec.cost_micro_usd(
                    usage.input_tokens, usage.output_tokens
                )
        outcome.tool_calls = tool_calls_of(new, request.meter)
        outcome.metered_tool_calls = request.meter.metered_calls
        outcome.tool_cost_micro_usd = request.meter.cost_micro_usd
        outcome.cost_micro_usd += outcome.tool_cost_micro_usd
        if output is None or isinstance(output, DeferredToolRequests):
            calls = output.calls if output is not None else last_response_calls(new)
            outcome.external_calls = [
                ExternalCall(call.tool_call_id, call.tool_name, call.args_as_json_str()) for call in calls
            ]
            outcome.text = text_of_last_response(new)
        else:
            outcome.text = str(output)
        outcome.model = answered_by.spec.id
        outcome.byok = answered_by.byok
        provider = answered_by.spec.provider
        used_fallback = answered_by is not request.primary
        self.metrics.llm_requests.labels(provider, "fallback" if used_fallback else "ok").inc()
        self.metrics.llm_tokens.labels(provider, "input").inc(outcome.input_tokens)
        self.metrics.llm_tokens.labels(provider, "output").inc(outcome.output_tokens)
        return outcome

    def _stopped(self, request: TurnRequest, new: list[ModelMessage], notice: str) -> TurnOutcome:
        """The outcome of a tool loop stopped before a request the caps left no room for: what its requests
        so far cost, and the notice as the answer."""
        outcome = self._succeeded(request, new)
        outcome.text, outcome.ok, outcome.error, outcome.external_calls = notice, False, notice, []
        return outcome

    def _which(self, request: TurnRequest, model_name: str | None) -> ResolvedModel:
        """The model behind a response: providers may answer with a dated name ("gpt-4o-2024-08-06")."""
        if request.fallback is None or not model_name:
            return request.primary
        for candidate in sorted((request.fallback, request.primary), key=lambda r: -len(r.spec.name)):
            if model_name.startswith(candidate.spec.name):
                return candidate
        return request.primary

    def _failed(self, request: TurnRequest, exc: BaseException) -> TurnOutcome:
        error = describe_error(exc)
        for resolved in (request.primary, request.fallback):
            key = resolved.credentials.api_key if resolved else None
            if key:  # providers quote the key they refused; whatever its shape, it goes
                error = error.replace(key, "[redacted]")
        error = redact_text(error)[:2000]
        log.warning(
            "agent reply failed", agent_id=request.deps.agent.id, model=request.primary.spec.id, error=error
        )
        self.metrics.llm_requests.labels(request.primary.spec.provider, "failed").inc()
        return TurnOutcome(text=APOLOGY, ok=False, error=error, model=request.primary.spec.id)


def user_content(request: TurnRequest) -> str | list[UserContent]:
    """The new user message: its text, with the images sent alongside it."""
    text = request.prompt or ""
    if not request.media:
        return text
    content: list[UserContent] = [text] if text.strip() else []
    content.extend(request.media)
    return content


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ExceptionGroup):
        return "; ".join(describe_error(e) for e in exc.exceptions)
    return f"{exc.__class__.__name__}: {exc}"


def tool_calls_of(messages: list[ModelMessage], meter: ToolMeter | None = None) -> list[dict[str, Any]]:
    """The tools the agent called, with their arguments and results, in order (and from the ``meter``,
    how long each took and what the metered ones cost)."""
    calls: dict[str, dict[str, Any]] = {}
    for message in messages:
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                calls[part.tool_call_id] = {
                    "name": part.tool_name,
                    "args": part.args_as_dict(),
                    "result": None,
                }
            elif isinstance(part, ToolReturnPart) and part.tool_call_id in calls:
                calls[part.tool_call_id]["result"] = _result_text(part.content)[:2000]
                if isinstance(part.metadata, dict):  # a connected tool's: which it was, whether it worked
                    calls[part.tool_call_id].update(
                        {k: v for k, v in part.metadata.items() if k in RECORDED_METADATA}
                    )
                record = meter.calls.get(part.tool_call_id) if meter is not None else None
                if record is not None:
                    calls[part.tool_call_id]["ms"] = record.milliseconds
                    if record.metered:
                        calls[part.tool_call_id]["metered"] = True
                        calls[part.tool_call_id]["cost_micro_usd"] = record.cost_micro_usd
    return [c for c in calls.values() if c["result"] is not None]


def _result_text(content: Any) -> str:
    """A tool's answer as its record keeps it: its text; an image in it (a screenshot for a computer-use
    model) is kept apart, as the record's ``screenshot``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and any(isinstance(item, BinaryContent) for item in content):
        return "\n".join(str(item) for item in content if isinstance(item, str))
    return json.dumps(content, default=str)


def text_of_event(event: object) -> str:
    """The text a streamed event adds (empty for tool calls and other parts)."""
    if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
        return event.part.content
    if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        return event.delta.content_delta
    return ""


def last_response_calls(messages: list[ModelMessage]) -> list[ToolCallPart]:
    for message in reversed(messages):
        if isinstance(message, ModelResponse):
            return [part for part in message.parts if isinstance(part, ToolCallPart)]
    return []


def text_of_last_response(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelResponse):
            return "".join(p.content for p in message.parts if isinstance(p, TextPart))
    return ""
