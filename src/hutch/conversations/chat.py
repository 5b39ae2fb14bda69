"""The chat flow shared by every channel: store what the user said, answer it, store the answer.

Two steps, so the user's message is committed before the model is called: ``begin`` stores it, the
caller commits, then ``answer`` (or ``stream``) runs the engine and stores the reply (or the apology
and the error) in a second transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from hutch.accounts.repository import OrgRepository
from hutch.agents.models import Agent, AgentStatus
from hutch.agents.service import org_credentials
from hutch.conversations.models import Conversation, Message, MessageRole, MessageStatus
from hutch.conversations.repository import MemoryRepository, MessageRepository
from hutch.conversations.service import ConversationService
from hutch.core.errors import Conflict, NotFound
from hutch.db.engine import UnitOfWork
from hutch.engine.deps import EngineDeps
from hutch.engine.gateway import ResolvedModel
from hutch.engine.history import select_history, to_model_messages
from hutch.engine.prompt import PromptContext, build_instructions
from hutch.engine.runner import Engine, TextDelta, TurnOutcome, TurnRequest
from hutch.worker import WorkerResources

COMPACT_JOB = "conversations.compact"


class AgentPaused(Conflict):
    def __init__(self) -> None:
        super().__init__("This agent is paused; set its status to active to chat with it.")


@dataclass
class Turn:
    agent: Agent
    conversation: Conversation
    user_message: Message
    channel: str
    end_user: str


@dataclass
class Answer:
    turn: Turn
    message: Message
    outcome: TurnOutcome


class ChatFlow:
    def __init__(self, uow: UnitOfWork, resources: WorkerResources) -> None:
        self.uow = uow
        self.session = uow.session
        self.resources = resources
        self.settings = resources.settings
        self.conversations = ConversationService(uow.session)

    async def models_for(self, agent: Agent) -> tuple[ResolvedModel, ResolvedModel | None]:
        """The agent's model and fallback with their keys, or 409 saying which key is missing."""
        keys = await org_credentials(self.session, self.resources.secret_box, agent.org_id)
        primary = self.resources.llm.resolve(agent.model, keys)
        fallback = None
        if agent.fallback_model:
            try:
                fallback = self.resources.llm.resolve(agent.fallback_model, keys)
            except Conflict:
                fallback = None  # an unusable fallback must not block the primary model
        return primary, fallback

    async def begin(
        self, agent: Agent, channel: str, end_user: str, text: str, conversation_id: str | None = None
    ) -> Turn:
        if agent.status is not AgentStatus.ACTIVE:
            raise AgentPaused()
        await self.models_for(agent)  # refuse before storing anything when no model can answer
        conversation = await self.conversations.open(agent, channel, end_user, conversation_id)
        message = await self.conversations.add(conversation, MessageRole.USER, text)
        return Turn(agent, conversation, message, channel, end_user)

    async def resume(self, agent_id: str, conversation_id: str, message_id: str, channel: str) -> Turn:
        """The turn whose user message an earlier transaction stored (streams and jobs run in their own)."""
        agent = await self.session.get(Agent, agent_id)
        conversation = await self.session.get(Conversation, conversation_id)
        message = await self.session.get(Message, message_id)
        if agent is None or conversation is None or message is None:
            raise NotFound("Conversation")
        return Turn(agent, conversation, message, channel, conversation.end_user)

    async def answer(self, turn: Turn) -> Answer:
        request = await self._request(turn)
        outcome = await Engine(self.resources.llm, self.resources.metrics, self.settings).run(request)
        return await self._finish(turn, outcome)

    async def stream(self, turn: Turn) -> AsyncIterator[TextDelta | Answer]:
        """Text deltas as they come, then the stored :class:`Answer` last."""
        request = await self._request(turn)
        engine = Engine(self.resources.llm, self.resources.metrics, self.settings)
        async for event in engine.stream(request):
            if isinstance(event, TurnOutcome):
                yield await self._finish(turn, event)
            else:
                yield event

    async def _request(self, turn: Turn) -> TurnRequest:
        agent, conversation = turn.agent, turn.conversation
        primary, fallback = await self.models_for(agent)
        memories = MemoryRepository(self.session)
        facts = await memories.facts(agent.id, turn.end_user, self.settings.memories_in_prompt)
        summary = await memories.summary_of(conversation.id)
        covered = summary.covers_until_seq or 0 if summary else 0
        recent = await MessageRepository(self.session).recent(
            conversation.id, self.settings.history_messages + 1
        )
        earlier = [m for m in recent if m.seq > covered and m.id != turn.user_message.id]
        history = select_history(earlier, self.settings.history_token_budget)
        org = await OrgRepository(self.session).get(agent.org_id)
        now = datetime.now(UTC)
        instructions = build_instructions(
            PromptContext(
                agent=agent,
                org_name=org.name if org else "your organisation",
                channel=turn.channel,
                now=now,
                facts=[f.content for f in facts],
                summary=summary.content if summary else None,
            )
        )
        deps = EngineDeps(
            session=self.session,
            settings=self.settings,
            agent=agent,
            org_id=agent.org_id,
            org_name=org.name if org else "",
            end_user=turn.end_user,
            conversation_id=conversation.id,
            channel=turn.channel,
            now=now,
        )
        return TurnRequest(
            instructions=instructions,
            history=to_model_messages(history),
            prompt=turn.user_message.content,
            deps=deps,
            primary=primary,
            fallback=fallback,
            tools=list(agent.tools),
            temperature=float(agent.temperature),
            max_tokens=agent.max_tokens,
        )

    async def _finish(self, turn: Turn, outcome: TurnOutcome) -> Answer:
        # Other messages may have arrived while the model answered: lock and re-read the count.
        await self.session.refresh(turn.conversation, with_for_update=True)
        message = await self.conversations.add(
            turn.conversation,
            MessageRole.ASSISTANT,
            outcome.text,
            status=MessageStatus.OK if outcome.ok else MessageStatus.FAILED,
            error=outcome.error,
            model=outcome.model,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            cost_micro_usd=outcome.cost_micro_usd,
            byok=outcome.byok,
            tool_calls=outcome.tool_calls,
        )
        window = self.settings.history_messages
        count = turn.conversation.message_count
        if count > 2 * window and count % window == 0:  # every `window` messages once the thread is long
            self.uow.defer(COMPACT_JOB, conversation_id=turn.conversation.id)
        return Answer(turn, message, outcome)
