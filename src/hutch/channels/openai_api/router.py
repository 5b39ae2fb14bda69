"""``/v1/chat/completions`` and ``/v1/models``: an agent behind OpenAI's API, for any OpenAI client.

``model`` names one of the caller's agents (slug or id). The agent's persona, tools, memories and (later)
knowledge apply. With ``user``, the exchange is stored in a conversation and memories are kept for that
end user; without it, nothing about the caller's conversation is kept. Tools in the request are offered
to the model next to the agent's own, and calls to them come back to the caller unchanged.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic_ai.messages import ModelMessage

from hutch.agents.models import Agent
from hutch.agents.repository import AgentRepository
from hutch.channels.api_turn import (
    FAILURE_MESSAGE,
    UPSTREAM_FAILED,
    answer_call,
    begin_call,
    find_agent,
    stream_call,
)
from hutch.core.errors import openai_error
from hutch.engine.openai_schemas import (
    AnthropicModelCard,
    AnthropicModelList,
    ChatCompletion,
    ChatCompletionRequest,
    ModelCard,
    ModelCardList,
)
from hutch.engine.openai_translate import (
    chunk,
    completion,
    to_engine,
    tool_calls_out,
    tool_definitions,
    usage_chunk,
)
from hutch.engine.runner import TextDelta, TurnOutcome, TurnRequest
from hutch.http.authz import Chatter, Reader
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.turns.flow import Turn, TurnFlow
from hutch.turns.spend import CallSize, chars_of

router = APIRouter(tags=["openai-compatible"])
CHANNEL = "openai_api"


@dataclass
class CompletionCall:
    """One call's parts, parsed once: who talks, what came before, what is new."""

    body: ChatCompletionRequest
    system: list[str]
    history: list[ModelMessage]
    prompt: str | None
    end_user: str | None
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def parse(cls, body: ChatCompletionRequest) -> CompletionCall:
        system, history, prompt = to_engine(body.messages)
        return cls(body, system, history, prompt, f"api:{body.user}" if body.user else None)

    async def begin(self, flow: TurnFlow, agent: Agent) -> Turn:
        """Phase 1: with `user`, the new message is stored in that end user's conversation (the caller keeps
        the history); without, the call is counted and nothing about it kept."""
        size = CallSize(
            chars_of(self.history, self.system), self.body.max_completion_tokens or self.body.max_tokens
        )
        return await begin_call(
            flow, agent, CHANNEL, self.end_user, self.prompt, reference=self.id, size=size
        )

    def request(self, flow: TurnFlow, turn: Turn) -> TurnRequest:
        caller = [s for s in self.system if s.strip()]
        return flow.request(
            turn,
            history=self.history,
            extra_instructions=["Instructions from the caller:\n" + "\n".join(caller)] if caller else [],
            external_tools=tool_definitions(self.body.tools),
            temperature=self.body.temperature,
            max_tokens=self.body.max_completion_tokens or self.body.max_tokens,
        )


@router.post("/v1/chat/completions", response_model=ChatCompletion)
async def chat_completions(
    body: ChatCompletionRequest, principal: Chatter, uow: UoWDep, resources: ResourcesDep
) -> ChatCompletion | JSONResponse | StreamingResponse:
    """OpenAI Chat Completions, answered by the agent named in `model` (needs an API key with `chat`)."""
    flow = TurnFlow.of_caller(uow, resources, principal)
    agent = await find_agent(flow, principal, body.model)
    call = CompletionCall.parse(body)
    turn = await call.begin(flow, agent)  # committed: what the user said is safe before the model runs
    # The caller's own history and tools: the shared engine answers (a runtime keeps its own conversation).
    # Built before answering, so a refusal (a member holds the conversation) is the response's status.
    request = call.request(flow, turn)
    if body.stream:
        return StreamingResponse(stream_completion(flow, call, turn, request), media_type="text/event-stream")
    outcome = (await answer_call(flow, turn, request)).outcome
    if not outcome.ok:
        return JSONResponse(openai_error(UPSTREAM_FAILED, FAILURE_MESSAGE, "upstream_error"), UPSTREAM_FAILED)
    return completion(call.id, call.created, body.model, outcome)


async def stream_completion(
    request_flow: TurnFlow, call: CompletionCall, turn: Turn, request: TurnRequest
) -> AsyncIterator[str]:
    """``chat.completion.chunk`` events, then (if asked) a usage chunk, then ``[DONE]``."""
    ids = (call.id, call.created, call.body.model)
    yield chunk(*ids, {"role": "assistant", "content": ""})
    outcome: TurnOutcome | None = None
    async for event in stream_call(request_flow, turn, request):
        if isinstance(event, TextDelta):
            yield chunk(*ids, {"content": event.text})
        else:
            outcome = event.outcome
    assert outcome is not None
    if not outcome.ok:
        error = openai_error(UPSTREAM_FAILED, FAILURE_MESSAGE, "upstream_error")
        yield f"data: {json.dumps(error)}\n\n"
        return
    calls = tool_calls_out(outcome)
    if calls:
        deltas = [{"index": n, **c.model_dump()} for n, c in enumerate(calls)]
        yield chunk(*ids, {"tool_calls": deltas})
    yield chunk(*ids, {}, outcome.finish_reason)
    if call.body.stream_options is not None and call.body.stream_options.include_usage:
        yield usage_chunk(*ids, outcome)
    yield "data: [DONE]\n\n"


@router.get("/v1/models", response_model=ModelCardList | AnthropicModelList)
async def list_models(
    principal: Reader, uow: UoWDep, anthropic_version: Annotated[str | None, Header()] = None
) -> ModelCardList | AnthropicModelList:
    """The caller's agents as models: use an agent's slug (or id) as `model`. OpenAI's list format, or
    Anthropic's when the request carries `anthropic-version` (as Anthropic's SDKs send)."""
    agents, _ = await AgentRepository(uow.session).page(principal, 0, 1000)
    if anthropic_version is not None:
        cards = [
            AnthropicModelCard(id=a.slug, display_name=a.name, created_at=a.created_at.isoformat())
            for a in agents
        ]
        return AnthropicModelList(
            data=cards,
            first_id=cards[0].id if cards else None,
            last_id=cards[-1].id if cards else None,
        )
    return ModelCardList(
        data=[
            ModelCard(id=a.slug, created=int(a.created_at.timestamp()), owned_by=principal.org_id)
            for a in agents
        ]
    )
