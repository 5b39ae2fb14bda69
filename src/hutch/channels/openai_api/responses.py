"""OpenAI's Responses API over an agent's turn: a call parsed, continued from the responses it follows, begun,
answered (whole or streamed) and, unless ``store`` is false, kept for the next one.

A kept response is stored twice over, each for its reader: its question and answer as messages of a
conversation (the inbox, memories of the end user, the usage pages), and its items as a ``StoredResponse``
(what ``previous_response_id`` continues, tool calls included, and what ``GET /v1/responses/{id}`` shows).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from hutch.agents.models import Agent
from hutch.channels.api_turn import FAILURE_MESSAGE, begin_call, find_agent
from hutch.channels.openai_api.models import ResponseStatus, StoredResponse
from hutch.channels.openai_api.responses_repository import ResponseRepository
from hutch.channels.openai_api.responses_schemas import ResponseCreate, ResponseObject
from hutch.channels.openai_api.responses_translate import (
    EngineInput,
    InvalidInput,
    function_tools,
    input_items,
    output_items,
    to_engine,
    usage_of,
)
from hutch.core.errors import NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.engine.runner import TurnRequest
from hutch.turns.flow import Answer, Turn, TurnFlow
from hutch.turns.spend import CallSize, chars_of

CHANNEL = "openai_api"


class ResponseNotFound(NotFound):
    code = "response_not_found"

    def __init__(self, response_id: str, param: str | None = None) -> None:
        super().__init__(detail=f"No response with id '{response_id}' was found.")
        self.param = param


@dataclass
class ResponseCall:
    """One ``POST /v1/responses``, parsed once; ``output`` is set when the answer is stored."""

    body: ResponseCreate
    agent: Agent
    items: list[dict[str, Any]]  # the new input, as items
    read: EngineInput  # the chain's items and the new ones, for the engine
    end_user: str | None
    conversation_id: str | None
    id: str = field(default_factory=lambda: new_id("resp"))
    message_id: str = field(default_factory=lambda: new_id("msg"))
    created_at: int = field(default_factory=lambda: int(time.time()))
    streamed: list[str] = field(default_factory=list)  # the text deltas the caller was sent
    output: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    failed: bool = False

    @classmethod
    async def parse(cls, flow: TurnFlow, principal: Principal, body: ResponseCreate) -> ResponseCall:
        """The call's agent, the chain it continues (the caller's org's only: anyone else's is a 404) and its
        items read for the engine. Reads only: nothing is stored or counted yet."""
        if body.background:
            raise InvalidInput("background responses are not supported; stream instead.", param="background")
        agent = await find_agent(flow, principal, body.model)
        items = input_items(body.input)
        earlier: list[dict[str, Any]] = []
        previous: StoredResponse | None = None
        if body.previous_response_id is not None:
            repository = ResponseRepository(flow.session)
            previous = await repository.get(principal, body.previous_response_id)
            if previous is None:
                raise ResponseNotFound(body.previous_response_id, "previous_response_id")
            earlier = await repository.history_items(principal.org_id, previous.id)
        read = to_engine(earlier + items)
        if read.sees_images:
            primary, _ = await flow.models_for(agent)
            if not primary.spec.vision:
                raise InvalidInput(
                    f"The agent's model ({agent.model}) cannot see images; send text, or choose a model that "
                    "reads images for the agent."
                )
        call = cls(body, agent, items, read, None, None)
        if previous is not None:  # the conversation goes on, with whoever it was with
            call.end_user = previous.end_user
            call.conversation_id = previous.conversation_id if previous.agent_id == agent.id else None
        elif body.user:
            call.end_user = f"api:{body.user}"  # the same end user (and memories) as Chat Completions'
        elif body.store:
            call.end_user = f"resp:{call.id}"  # a chain of its own: memories stay within it
        return call

    async def begin(self, flow: TurnFlow) -> tuple[Turn, TurnRequest]:
        """Phase 1 (committed), then the engine's request: the agent's persona with the caller's
        ``instructions``, the chain's history, the caller's functions next to the agent's own tools. Built
        before answering, so a refusal (a member holds the conversation) is the response's status."""
        turn = await begin_call(
            flow,
            self.agent,
            CHANNEL,
            self.end_user,
            self.read.prompt,
            reference=self.id,
            conversation_id=self.conversation_id,
            keep=self.body.store,
            size=CallSize(
                chars_of(self.read.history, [self.body.instructions or "", *self.read.system]),
                self.body.max_output_tokens,
            ),
        )
        caller = [s for s in [self.body.instructions or "", *self.read.system] if s.strip()]
        request = flow.request(
            turn,
            history=self.read.history,
            extra_instructions=["Instructions from the caller:\n" + "\n".join(caller)] if caller else [],
            external_tools=function_tools(self.body.tools),
            temperature=self.body.temperature,
            max_tokens=self.body.max_output_tokens,
        )
        if self.read.media:
            request = replace(request, media=[*request.media, *self.read.media])
        return turn, request

    async def keep(self, uow: UnitOfWork, answer: Answer) -> None:
        """Phase 3's record: the output items, and (when ``store``) the stored response, in a statement of
        its own."""
        outcome = answer.outcome
        text = "".join(self.streamed) if self.streamed else outcome.text
        self.failed = not outcome.ok
        self.output = [] if self.failed else output_items(outcome, text, self.message_id)
        self.usage = usage_of(outcome)
        if not self.body.store:
            return
        turn = answer.turn
        record = StoredResponse(
            id=self.id,
            org_id=self.agent.org_id,
            agent_id=self.agent.id,
            previous_id=self.body.previous_response_id,
            conversation_id=turn.conversation.id if turn.conversation else self.conversation_id,
            user_message_id=turn.user_message.id if turn.user_message else None,
            assistant_message_id=answer.message.id if answer.message else None,
            end_user=self.end_user or "",
            model=self.body.model,
            status=ResponseStatus.FAILED if self.failed else ResponseStatus.COMPLETED,
            instructions=self.body.instructions,
            input_items=self.items,
            output_items=self.output,
            usage=self.usage,
            caller_metadata=self.body.metadata or {},
            error={"code": "server_error", "message": FAILURE_MESSAGE} if self.failed else None,
        )
        async with uow.alone():
            await ResponseRepository(uow.session).add(record)

    def answered(self, status: str | None = None) -> ResponseObject:
        """The response as the API shows it; ``status``: while it is still being streamed."""
        body = self.body
        return ResponseObject.model_validate(
            {
                "id": self.id,
                "created_at": self.created_at,
                "status": status or ("failed" if self.failed else "completed"),
                "model": body.model,
                "output": self.output if status is None else [],
                "usage": self.usage if status is None else None,
                "error": {"code": "server_error", "message": FAILURE_MESSAGE} if self.failed else None,
                "instructions": body.instructions,
                "metadata": body.metadata or {},
                "previous_response_id": body.previous_response_id,
                "store": body.store,
                "user": body.user,
                "tools": body.tools or [],
                "tool_choice": body.tool_choice or "auto",
                "temperature": body.temperature,
                "max_output_tokens": body.max_output_tokens,
            }
        )


def stored_answer(record: StoredResponse) -> ResponseObject:
    """A stored response as ``GET /v1/responses/{id}`` shows it."""
    return ResponseObject.model_validate(
        {
            "id": record.id,
            "created_at": int(record.created_at.timestamp()),
            "status": record.status.value,
            "model": record.model,
            "output": record.output_items,
            "usage": record.usage,
            "error": record.error,
            "instructions": record.instructions,
            "metadata": record.caller_metadata,
            "previous_response_id": record.previous_id,
            "user": record.end_user.removeprefix("api:") if record.end_user.startswith("api:") else None,
        }
    )


async def read_response(uow: UnitOfWork, principal: Principal, response_id: str) -> ResponseObject:
    record = await ResponseRepository(uow.session).get(principal, response_id)
    if record is None:
        raise ResponseNotFound(response_id)
    return stored_answer(record)


async def delete_response(uow: UnitOfWork, principal: Principal, response_id: str) -> None:
    """Forget a stored response (it can no longer be continued); its conversation stays in the inbox."""
    if not await ResponseRepository(uow.session).delete(principal, response_id):
        raise ResponseNotFound(response_id)
