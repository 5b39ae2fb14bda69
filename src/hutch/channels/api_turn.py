"""What the APIs that serve agents to outside programs share — OpenAI's Chat Completions and Responses,
Anthropic's Messages: the agent a call names, its turn begun (kept or not), its answer streamed.

Each API only translates its wire format; admission, quotas, the key's budget, metering and the refusal of
a conversation a member holds are the turn's (``hutch.turns.flow``), the same for all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from hutch.agents.models import Agent, AgentStatus
from hutch.core.errors import NotFound
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork, unit_of_work
from hutch.engine.runner import TextDelta, TurnOutcome, TurnRequest
from hutch.turns.flow import AgentPaused, Answer, Turn, TurnFlow
from hutch.turns.spend import CallSize

UPSTREAM_FAILED = 502
FAILURE_MESSAGE = "The agent's model did not answer; try again in a moment."
# Written once the answer is stored, on the unit of work that stored it (a stored response's record).
AfterAnswer = Callable[[UnitOfWork, Answer], Awaitable[None]]


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(detail=f"The model '{model}' does not exist or you do not have access to it.")


async def find_agent(flow: TurnFlow, principal: Principal, model: str) -> Agent:
    """The caller's active agent named by ``model`` (slug or id); 404 for anyone else's."""
    agent = await flow.find_agent(principal, model)
    if agent is None:
        raise ModelNotFound(model)
    if agent.status is not AgentStatus.ACTIVE:
        raise AgentPaused()
    return agent


async def begin_call(
    flow: TurnFlow,
    agent: Agent,
    channel: str,
    end_user: str | None,
    prompt: str | None,
    *,
    reference: str,
    conversation_id: str | None = None,
    keep: bool = True,
    size: CallSize | None = None,
) -> Turn:
    """Phase 1. Kept (an end user named, a new question, ``keep``): the question is stored in that end user's
    conversation (the caller sends the history, so it is a record, never a prompt). Otherwise the call is
    counted and nothing about it kept (``reference`` names it in the ledger). ``size``: the caller's own
    history and instructions, and the answer's token limit it asks for (what the turn holds is sized on)."""
    if not keep or end_user is None or prompt is None:
        return await flow.begin_unstored(agent, channel, end_user, prompt, reference=reference, size=size)
    return await flow.begin(
        agent,
        channel,
        end_user,
        prompt,
        conversation_id,
        stored_history=False,
        caller_waits=True,
        size=size,
    )


async def answer_call(
    flow: TurnFlow, turn: Turn, request: TurnRequest, after: AfterAnswer | None = None
) -> Answer:
    """Phases 2 and 3 on the request's unit of work: the engine's answer, stored and metered."""
    answer = await flow.finish(turn, await flow.engine.run(request))
    if after is not None:
        await after(flow.uow, answer)
    return answer


async def stream_call(
    request_flow: TurnFlow, turn: Turn, request: TurnRequest, after: AfterAnswer | None = None
) -> AsyncIterator[TextDelta | Answer]:
    """Phases 2 and 3 as they happen, on a unit of work of the stream's own (it outlives the request): text
    deltas, then the stored :class:`Answer` last (also after a failure)."""
    resources = request_flow.resources
    async with unit_of_work(resources.database, resources.jobs) as uow:
        flow = request_flow.continued_on(uow)
        outcome: TurnOutcome | None = None
        async for event in flow.engine.stream(request):
            if isinstance(event, TextDelta):
                if event.text and outcome is None:
                    yield event
            else:
                outcome = event
        assert outcome is not None
        answer = await flow.finish(turn, outcome)
        if after is not None:
            await after(uow, answer)
    yield answer
