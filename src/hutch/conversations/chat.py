"""The chat flow shared by every channel: store what the user said, answer it, store the answer.

Two steps, so the user's message is committed before the model is called: ``begin`` stores it and reads
what the prompt needs, the caller commits, then ``answer`` (or ``stream``) runs the engine and stores the
reply (or the apology and the error) with the usage it counts, in one statement. No transaction is open
while the model answers, so a turn waiting on its model holds no pooled database connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic_ai.messages import ModelMessage
from pydantic_ai.tools import ToolDefinition

from hutch.admin.alerts import raise_alert
from hutch.admin.models import Severity
from hutch.agents.catalog import DEMO_MODEL, Credentials
from hutch.agents.models import Agent, AgentStatus, Placement
from hutch.agents.repository import AgentRepository
from hutch.agents.service import decrypted, org_credentials
from hutch.billing.ledger import Ledger
from hutch.billing.quotas import (
    QUOTA_NOTICE_JOB,
    Quotas,
    TurnUsage,
    quota_notice_due,
)
from hutch.conversations.facts import StoredFacts
from hutch.conversations.models import Conversation, Message, MessageRole, MessageStatus
from hutch.conversations.repository import MemoryRepository, MessageRepository, UsageRepository
from hutch.conversations.service import COUNTED_CONVERSATION, ConversationService
from hutch.core.errors import Conflict
from hutch.core.principal import Principal
from hutch.core.ratelimit import PostgresRateLimiter, RateLimiter
from hutch.db.carried import Carried
from hutch.db.engine import NO_FLUSH_WAIT, UnitOfWork
from hutch.engine.deps import EngineDeps, TeamActions
from hutch.engine.gateway import ResolvedModel
from hutch.engine.history import select_history, to_model_messages
from hutch.engine.prompt import PromptContext, build_instructions
from hutch.engine.runner import Engine, TextDelta, TurnOutcome, TurnRequest
from hutch.engine.tools import MANAGER_TOOLS
from hutch.knowledge.chunking import count_tokens
from hutch.knowledge.service import has_knowledge, retrieve
from hutch.runtimes.client import complete, ready_runtime
from hutch.worker import WorkerResources

COMPACT_JOB = "conversations.compact"
MANAGER_ROLE = "manager"
PROVIDER_FAILURES_ALERT = 20  # failed answers per provider in 5 minutes that make an admin alert
TimeLeft = Callable[[str], Awaitable[int | None]]  # org id → seconds of voice time left, None if untracked
KNOWLEDGE_TOP_K = 5


class AgentPaused(Conflict):
    def __init__(self) -> None:
        super().__init__("This agent is paused; set its status to active to chat with it.")


@dataclass(frozen=True)
class PromptReads:
    """What a turn's prompt needs from the database besides the agent."""

    facts: list[str]  # remembered about the end user
    # Unless the caller sends the history with each message (OpenAI clients):
    summary: str | None = None  # of the older part of the conversation
    history: list[Message] = field(default_factory=list)  # the newest before this one, within the budget


@dataclass
class Turn:
    agent: Agent
    conversation: Conversation
    user_message: Message
    channel: str
    end_user: str
    reads: PromptReads  # read with the message (see ``begin``)
    # False when the caller sends the history with each message (OpenAI clients): the stored conversation
    # is then a record, never a prompt, so it is not compacted.
    stored_history: bool = True


@dataclass
class Answer:
    turn: Turn
    message: Message
    outcome: TurnOutcome


class ChatFlow:
    def __init__(
        self,
        uow: UnitOfWork,
        resources: WorkerResources,
        *,
        api_key_id: str | None = None,
        time_left: TimeLeft | None = None,
    ) -> None:
        self.uow = uow
        # Voice sessions count the time running sessions use before they are charged; None: not tracked.
        self.time_left = time_left
        self.api_key_id = api_key_id  # the API key asking, whose monthly budget pays for the answer
        self.session = uow.session
        self.resources = resources
        self.settings = resources.settings
        self.conversations = ConversationService(uow.session)
        self._keys: dict[str, dict[str, Credentials]] = {}  # org id → its provider keys, read once per flow
        # API processes share their limiter; workers count per-minute rates in PostgreSQL directly.
        limiter: RateLimiter = getattr(resources, "rate_limiter", None) or PostgresRateLimiter(
            resources.database.engine
        )
        self.quotas = Quotas(uow.session, resources.plans, limiter)

    def continued_on(self, uow: UnitOfWork) -> ChatFlow:
        """This flow on a stream's unit of work (a stream outlives its request's). The org, its plan and its
        provider keys stay known, so answering a turn from ``begin`` reads nothing before the model runs and
        holds no connection while it does."""
        flow = ChatFlow(uow, self.resources, api_key_id=self.api_key_id, time_left=self.time_left)
        flow._keys = dict(self._keys)
        flow.quotas = self.quotas.on(uow.session)
        return flow

    async def find_agent(self, principal: Principal, ref: str) -> Agent | None:
        """The caller's agent named by id or slug; its org and provider keys come with it for the turn."""
        found = await AgentRepository(self.session).to_answer(principal, ref)
        if found is None:
            return None
        self.quotas.knows(found.org)
        self._keys[found.org.id] = decrypted(self.resources.secret_box, found.encrypted_keys)
        return found.agent

    async def models_for(self, agent: Agent) -> tuple[ResolvedModel, ResolvedModel | None]:
        """The agent's model and fallback with their keys, or 409 saying which key is missing."""
        keys = self._keys.get(agent.org_id)
        if keys is None:
            keys = await org_credentials(self.session, self.resources.secret_box, agent.org_id)
            self._keys[agent.org_id] = keys
        primary = self.resources.llm.resolve(agent.model, keys)
        fallback = None
        if agent.fallback_model:
            try:
                fallback = self.resources.llm.resolve(agent.fallback_model, keys)
            except Conflict:
                fallback = None  # an unusable fallback must not block the primary model
        return primary, fallback

    async def begin(
        self,
        agent: Agent,
        channel: str,
        end_user: str,
        text: str,
        conversation_id: str | None = None,
        *,
        stored_history: bool = True,
        caller_waits: bool = False,
    ) -> Turn:
        """Store the user's message and read what its prompt needs; the caller commits.

        ``caller_waits``: the sender waits for the answer, so the commit need not wait for the disk (see
        ``NO_FLUSH_WAIT``)."""
        if agent.status is not AgentStatus.ACTIVE:
            raise AgentPaused()
        await self.models_for(agent)  # refuse before storing anything when no model can answer
        await self.quotas.admit_message(agent.org_id)
        # Most messages go to the open conversation in one statement that also reserves the message on the
        # usage counters and reads the end user's facts (read here, so answering opens no transaction and
        # holds no connection while the model runs). The conversation is locked before the counters, in the
        # order ``finish`` takes them: turns of one conversation taking them in opposite orders would
        # deadlock. Every message of the org waits for the counters' row, held until the commit that
        # follows. A refusal rolls the new conversation and message back with everything else.
        also = MemoryRepository.facts_carried(agent.id, end_user, self.settings.memories_in_prompt)
        if caller_waits:
            also += NO_FLUSH_WAIT
        reservation = await self.quotas.message_reservation(agent.org_id, after=COUNTED_CONVERSATION)
        conversation, message, carried = await self.conversations.add_user_message(
            agent, channel, end_user, text, conversation_id, carrying=reservation + also
        )
        if carried is None:  # the message opened its conversation (or named one): reserve and read alone
            reservation = await self.quotas.message_reservation(agent.org_id)
            carried = await (reservation + also).execute(self.session)
        plan = await self.quotas.settle_reservation(agent.org_id, carried)
        facts = list(carried["facts"] or [])
        reads = (
            await self._prompt_reads(conversation, message, facts) if stored_history else PromptReads(facts)
        )
        turn = Turn(agent, conversation, message, channel, end_user, reads, stored_history)
        percent = quota_notice_due(plan, self.quotas.month_count)
        if percent is not None:
            self.uow.defer(QUOTA_NOTICE_JOB, org_id=agent.org_id, percent=percent)
        return turn

    async def meter(self, org_id: str, outcome: TurnOutcome, reference: str) -> None:
        """Count the answer's tokens and cost, and charge it to the credits on pay-per-use plans."""
        # Last in the transaction: every answer of the org waits for its usage row, held until the commit.
        await self.quotas.meter_turn(
            org_id, _usage(outcome), self._ledger(), reference, api_key_id=self.api_key_id
        )

    def _ledger(self) -> Ledger:
        return Ledger(
            self.uow, low_balance_threshold_cents=self.resources.plans.billing.low_balance_threshold_cents
        )

    @property
    def engine(self) -> Engine:
        return Engine(self.resources.llm, self.resources.metrics, self.settings)

    async def answer(self, turn: Turn) -> Answer:
        outcome = await self._on_runtime(turn) or await self.engine.run(await self._request(turn))
        demo = outcome.model == DEMO_MODEL
        if turn.agent.role == MANAGER_ROLE and (demo or not outcome.ok):
            from hutch.tasks.manager import Team, rule_based_reply  # tasks build on conversations

            # The customer is never stuck: simple requests are still understood without a model (down,
            # or the demo model, which cannot call tools).
            outcome.text = await rule_based_reply(
                Team(self.uow, self.resources, turn.agent), turn.user_message.content, demo=demo
            )
        return await self.finish(turn, outcome)

    async def stream(self, turn: Turn) -> AsyncIterator[TextDelta | Answer]:
        """Text deltas as they come, then the stored :class:`Answer` last."""
        if turn.agent.role == MANAGER_ROLE:  # a manager acts; its answer comes whole
            managed = await self.answer(turn)
            yield TextDelta(managed.message.content)
            yield managed
            return
        dedicated = await self._on_runtime(turn)
        if dedicated is not None:  # a runtime answers whole; its text comes as one delta
            yield TextDelta(dedicated.text)
            yield await self.finish(turn, dedicated)
            return
        async for event in self.engine.stream(await self._request(turn)):
            if isinstance(event, TurnOutcome):
                yield await self.finish(turn, event)
            else:
                yield event

    async def _prompt_reads(
        self, conversation: Conversation, message: Message, facts: list[str]
    ) -> PromptReads:
        """With the end user's facts, the conversation's summary and the newest messages before ``message``
        after it, within the history budget."""
        summary = await MemoryRepository(self.session).summary_of(conversation.id)
        covered = (summary.covers_until_seq or 0) if summary else 0
        recent = await MessageRepository(self.session).recent(
            conversation.id, self.settings.history_messages + 1
        )
        earlier = [m for m in recent if m.seq > covered and m.id != message.id]
        history = select_history(earlier, self.settings.history_token_budget)
        return PromptReads(facts, summary.content if summary else None, history)

    async def _facts(self, agent_id: str, end_user: str) -> list[str]:
        return await MemoryRepository(self.session).facts(
            agent_id, end_user, self.settings.memories_in_prompt
        )

    async def _request(self, turn: Turn) -> TurnRequest:
        reads = turn.reads
        return await self.build_request(
            turn.agent,
            channel=turn.channel,
            end_user=turn.end_user,
            conversation_id=turn.conversation.id,
            history=to_model_messages(reads.history),
            prompt=turn.user_message.content,
            summary=reads.summary,
            facts=reads.facts,
        )

    async def _on_runtime(self, turn: Turn) -> TurnOutcome | None:
        """The answer of the agent's dedicated runtime, when it has one that is ready; None otherwise (the
        shared workers answer meanwhile)."""
        agent = turn.agent
        if agent.placement is not Placement.DEDICATED:
            return None
        target = await ready_runtime(self.session, self.resources.secret_box, agent.id)
        if target is None:
            return None
        summary, history = turn.reads.summary, turn.reads.history
        context = [f"Summary of the conversation so far:\n{summary}"] if summary else []
        if await has_knowledge(self.session, agent):
            passages = await self._passages(agent, turn.user_message.content)
            context += [f"From [{title}]:\n{text}" for title, text in passages]
        messages: list[dict[str, Any]] = (
            [{"role": "system", "content": "\n\n".join(context)}] if context else []
        )
        messages += [
            {"role": m.role.value, "content": m.content}
            for m in history
            if m.role in (MessageRole.USER, MessageRole.ASSISTANT)
        ]
        messages.append({"role": "user", "content": turn.user_message.content})
        return await complete(target, self.resources.catalog, messages, turn.end_user, agent.slug)

    async def build_request(
        self,
        agent: Agent,
        *,
        channel: str,
        end_user: str | None,
        conversation_id: str | None,
        history: list[ModelMessage],
        prompt: str | None,
        summary: str | None = None,
        facts: list[str] | None = None,
        extra_instructions: Sequence[str] = (),
        external_tools: Sequence[ToolDefinition] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> TurnRequest:
        """Everything the engine needs: instructions with memories, models with keys, tools, limits.

        ``facts`` are the end user's, when already read (see ``begin``)."""
        primary, fallback = await self.models_for(agent)
        if facts is None:
            facts = await self._facts(agent.id, end_user) if end_user is not None else []
        org = await self.quotas.org(agent.org_id)
        org_name = org.name if org else "your organisation"
        now = datetime.now(UTC)
        tools = list(agent.tools)
        passages: list[tuple[str, str]] = []
        if await has_knowledge(self.session, agent):
            tools.append("search_knowledge")
            if prompt:
                passages = await self._passages(agent, prompt)
        instructions = build_instructions(
            PromptContext(
                agent=agent,
                org_name=org_name,
                channel=channel,
                now=now,
                facts=facts,
                summary=summary,
                knowledge=passages,
                extra=list(extra_instructions),
            )
        )
        deps = EngineDeps(
            facts=StoredFacts(self.session, agent.org_id, agent.id),
            settings=self.settings,
            agent=agent,
            org_id=agent.org_id,
            org_name=org_name,
            end_user=end_user,
            conversation_id=conversation_id,
            channel=channel,
            now=now,
            balance=lambda: self.balance_and_usage_words(agent.org_id, now),
            knowledge=lambda query: self._search_words(agent, query),
            team=self._team(agent),
        )
        return TurnRequest(
            instructions=instructions,
            history=history,
            prompt=prompt,
            deps=deps,
            primary=primary,
            fallback=fallback,
            tools=tools,
            temperature=float(agent.temperature) if temperature is None else temperature,
            max_tokens=agent.max_tokens if max_tokens is None else max_tokens,
            external_tools=list(external_tools),
        )

    def _team(self, agent: Agent) -> TeamActions | None:
        """A manager's employees and tasks, when the agent uses the tools that need them."""
        if not any(tool in MANAGER_TOOLS and tool != "get_status" for tool in agent.tools):
            return None
        from hutch.tasks.manager import Team  # tasks build on conversations

        return Team(self.uow, self.resources, agent)

    async def _passages(self, agent: Agent, query: str) -> list[tuple[str, str]]:
        """The best passages for ``query`` that fit the knowledge token budget, as (title, text)."""
        found = await retrieve(
            self.session, self.resources.embedder, self.resources.secret_box, agent, query, KNOWLEDGE_TOP_K
        )
        budget = self.settings.knowledge_prompt_tokens
        chosen: list[tuple[str, str]] = []
        for passage in found:
            text = f"{passage.heading}\n{passage.text}".strip() if passage.heading else passage.text
            budget -= count_tokens(text)
            if budget < 0 and chosen:
                break
            chosen.append((passage.title, text))
        return chosen

    async def _search_words(self, agent: Agent, query: str) -> str:
        passages = await self._passages(agent, query)
        if not passages:
            return "Nothing in the documents matches that."
        return "\n\n".join(f"From [{title}]:\n{text}" for title, text in passages)

    async def _count_failure(self, outcome: TurnOutcome) -> None:
        """A provider failing often (after retries and fallbacks) raises an admin alert; one failure not."""
        provider = (outcome.model or "unknown").split("/")[0]
        decision = await self.quotas.limiter_hit(f"llm-failures:{provider}", PROVIDER_FAILURES_ALERT, 300)
        if decision is not None and not decision.allowed:
            await raise_alert(
                self.uow,
                "provider_failures",
                Severity.CRITICAL,
                f"{provider} keeps failing",
                f"More than {PROVIDER_FAILURES_ALERT} answers failed on {provider} within 5 minutes; "
                f"the last error: {outcome.error}",
                dedup_key=f"provider_failures:{provider}",
            )

    async def balance_and_usage_words(self, org_id: str, now: datetime) -> str:
        usage = await UsageRepository(self.session).messages_this_month(org_id, now)
        return f"{await self.balance_words(org_id)} {usage} messages answered this month."

    async def balance_words(self, org_id: str) -> str:
        balance = await Ledger(self.uow).balance(org_id)
        plan = await self.quotas.plan_of(org_id)
        credits = f"${balance.credits_cents / 100:,.2f}"
        seconds: int | None = balance.seconds
        if self.time_left is not None:
            seconds = await self.time_left(org_id)
        time = (
            "voice time that is not tracked (the plan includes unlimited voice)"
            if seconds is None
            else f"{seconds // 60} minutes of prepaid time left"
        )
        return f"The organisation is on the {plan.name} plan, with {credits} of prepaid credits and {time}."

    async def finish(self, turn: Turn, outcome: TurnOutcome) -> Answer:
        org_id, usage = turn.agent.org_id, _usage(outcome)
        # The answer and the usage it counts are one statement, which locks the conversation's row first, then
        # the counters' (the order ``begin`` takes them in). Credits charged go in the same transaction.
        counters = self.quotas.turn_counters(org_id, usage, api_key_id=self.api_key_id)
        if await self.quotas.charges_credits(org_id, usage):
            message = await self._store_answer(turn, outcome, counters)
            await self.quotas.charge_turn(org_id, usage, self._ledger(), message.id)
        else:
            async with self.uow.alone():
                message = await self._store_answer(turn, outcome, counters)
        if not outcome.ok:
            await self._count_failure(outcome)
        window = self.settings.history_messages
        count = turn.conversation.message_count
        # Every `window` messages once the thread is long.
        if turn.stored_history and count > 2 * window and count % window == 0:
            self.uow.defer(COMPACT_JOB, conversation_id=turn.conversation.id)
        return Answer(turn, message, outcome)

    async def _store_answer(self, turn: Turn, outcome: TurnOutcome, counters: Carried) -> Message:
        # Other messages may have arrived while the model answered: ``add`` counts from the locked row.
        return await self.conversations.add(
            turn.conversation,
            MessageRole.ASSISTANT,
            outcome.text,
            status=MessageStatus.OK if outcome.ok else MessageStatus.FAILED,
            carrying=counters,
            error=outcome.error,
            model=outcome.model,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            cost_micro_usd=outcome.cost_micro_usd,
            byok=outcome.byok,
            tool_calls=outcome.tool_calls,
        )


def _usage(outcome: TurnOutcome) -> TurnUsage:
    return TurnUsage(outcome.input_tokens, outcome.output_tokens, outcome.cost_micro_usd, outcome.byok)
