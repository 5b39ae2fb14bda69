"""Anthropic's Messages API over an agent's turn: the caller sends the conversation with each call (as with
Chat Completions); with ``metadata.user_id`` the exchange is kept in that end user's conversation and
memories, without it nothing about it is kept."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from hutch.agents.models import Agent
from hutch.channels.anthropic_api.schemas import MessagesRequest
from hutch.channels.anthropic_api.translate import (
    EngineInput,
    content_of,
    event,
    stop_reason,
    system_of,
    to_engine,
    tool_definitions,
)
from hutch.channels.api_turn import FAILURE_MESSAGE, begin_call, find_agent, stream_call
from hutch.core.errors import BadRequest, anthropic_error
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.engine.runner import TextDelta, TurnOutcome, TurnRequest
from hutch.turns.flow import Turn, TurnFlow
from hutch.turns.spend import CallSize, chars_of

CHANNEL = "anthropic_api"


@dataclass
class MessagesCall:
    body: MessagesRequest
    agent: Agent
    read: EngineInput
    end_user: str | None
    id: str = field(default_factory=lambda: new_id("msg"))

    @classmethod
    async def parse(cls, flow: TurnFlow, principal: Principal, body: MessagesRequest) -> MessagesCall:
        agent = await find_agent(flow, principal, body.model)
        read = to_engine(body.messages)
        read.system = system_of(body.system)
        if read.sees_images:
            primary, _ = await flow.models_for(agent)
            if not primary.spec.vision:
                raise BadRequest(
                    f"The agent's model ({agent.model}) cannot see images; send text, or choose a model that "
                    "reads images for the agent."
                )
        user = body.metadata.user_id if body.metadata else None
        # The same end user (and memories) as the OpenAI APIs' ``user``.
        return cls(body, agent, read, f"api:{user}" if user else None)

    async def begin(self, flow: TurnFlow) -> tuple[Turn, TurnRequest]:
        """Phase 1 (committed), then the engine's request, built before answering so a refusal (a member
        holds the conversation) is the response's status."""
        size = CallSize(chars_of(self.read.history, self.read.system), self.body.max_tokens)
        turn = await begin_call(
            flow, self.agent, CHANNEL, self.end_user, self.read.prompt, reference=self.id, size=size
        )
        caller = [s for s in self.read.system if s.strip()]
        request = flow.request(
            turn,
            history=self.read.history,
            extra_instructions=["Instructions from the caller:\n" + "\n".join(caller)] if caller else [],
            external_tools=tool_definitions(self.body.tools),
            temperature=self.body.temperature,
            max_tokens=self.body.max_tokens,
        )
        if self.read.media:
            request = replace(request, media=[*request.media, *self.read.media])
        return turn, request

    def start(self) -> dict[str, object]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.body.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }


async def stream_message(
    flow: TurnFlow, call: MessagesCall, turn: Turn, request: TurnRequest
) -> AsyncIterator[str]:
    """``message_start``, a text block's ``content_block_delta`` events as the text arrives, the caller's
    tool calls as ``tool_use`` blocks, then ``message_delta`` with the usage and ``message_stop``."""
    yield event("message_start", message=call.start())
    streamed: list[str] = []
    outcome: TurnOutcome | None = None
    async for step in stream_call(flow, turn, request):
        if isinstance(step, TextDelta):
            if not streamed:
                yield event("content_block_start", index=0, content_block={"type": "text", "text": ""})
                yield event("ping")
            streamed.append(step.text)
            yield event("content_block_delta", index=0, delta={"type": "text_delta", "text": step.text})
        else:
            outcome = step.outcome
    assert outcome is not None
    if not outcome.ok:
        yield event("error", error=anthropic_error(502, FAILURE_MESSAGE)["error"])
        return
    index = 0
    if streamed:
        yield event("content_block_stop", index=0)
        index = 1
    for block in content_of(outcome, ""):  # the tool calls: the text came as it arrived
        yield event("content_block_start", index=index, content_block={**block, "input": {}})
        partial = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield event("content_block_delta", index=index, delta=partial)
        yield event("content_block_stop", index=index)
        index += 1
    usage = {"input_tokens": outcome.input_tokens, "output_tokens": outcome.output_tokens}
    yield event(
        "message_delta", delta={"stop_reason": stop_reason(outcome), "stop_sequence": None}, usage=usage
    )
    yield event("message_stop")
