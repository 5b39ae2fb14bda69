"""A chat turn, the one flow every channel runs: admit and store what the person said, ask the model, store
and meter the answer. Channels adapt it (how they word a refusal, deliver, show typing); none rewrites it.

Three phases, each owning its transaction (see docs/turns.md):

1. :meth:`TurnFlow.begin` — one transaction: admit (agent state, plan, rates, balance), store the message,
   reserve it on the usage counters and read everything the model call needs (prompt, history, facts, org,
   runtime endpoint); committed with its jobs. Knowledge passages are read right after, in a read of their
   own, once the question's embedding is computed holding no connection.
2. The model call and its tool loop (:meth:`TurnFlow.answer`, :meth:`TurnFlow.stream`), holding no session
   and no database connection: a tool that needs the database opens its own short unit of work.
3. :meth:`TurnFlow.finish` — store the answer with the usage it counts, charge credits, commit with its jobs.

A turn that stopped after phase 1 (a crash, a failed commit) is continued with :meth:`TurnFlow.resume`
from its stored message, without admitting or storing it twice.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic_ai.messages import ModelMessage
from pydantic_ai.tools import ToolDefinition

from hutch.accounts.suspension import refuse_suspended_org
from hutch.agents.models import Agent, AgentStatus, Audience, Placement
from hutch.agents.repository import AgentRepository, EncryptedKey
from hutch.agents.service import decrypted, org_credentials
from hutch.alerts.models import Severity
from hutch.alerts.service import raise_alert
from hutch.billing.holds import SpendHolds
from hutch.billing.ledger import Ledger
from hutch.billing.quotas import (
    QUOTA_NOTICE_JOB,
    EndUserRateLimited,
    Person,
    Quotas,
    ToolBudget,
    TurnUsage,
    quota_notice_due,
)
from hutch.billing.repository import UsageCounts
from hutch.browser.agent_browser import AgentBrowser, BrowserScope, StoredScreenshots
from hutch.browser.leases import BrowserLeases
from hutch.conversations.attachments_repository import AttachmentRepository
from hutch.conversations.end_users import EndUserProfile
from hutch.conversations.inbox import EndUserBlocked, TakenOver
from hutch.conversations.inbox_repository import EndUserRepository
from hutch.conversations.models import (
    AttachmentKind,
    Conversation,
    ConversationStatus,
    Message,
    MessageAttachment,
    MessageRole,
    MessageStatus,
)
from hutch.conversations.repository import MemoryRepository, MessageRepository
from hutch.conversations.service import COMPACT_JOB, ConversationService
from hutch.core.errors import Conflict, HutchError
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.db.carried import NOTHING, Carried
from hutch.db.engine import NO_FLUSH_WAIT, UnitOfWork, unit_of_work
from hutch.db.jobs import WorkerResources
from hutch.engine.browser_tools import BROWSER
from hutch.engine.catalog import DEMO_MODEL, Credentials
from hutch.engine.deps import EngineDeps
from hutch.engine.gateway import ResolvedModel
from hutch.engine.history import select_history, to_model_messages
from hutch.engine.metering import ToolMeter, reaches_outside
from hutch.engine.prompt import PromptContext, build_instructions
from hutch.engine.runner import (
    MAX_MODEL_REQUESTS_PER_TURN,
    Engine,
    HoldMore,
    TextDelta,
    TurnOutcome,
    TurnRequest,
)
from hutch.engine.tools import cost_per_call
from hutch.i18n import gettext
from hutch.integrations.tools import ConnectedTool, build_tools, is_connected, read_connected
from hutch.knowledge.chunking import count_tokens
from hutch.knowledge.search import Passage
from hutch.knowledge.service import embed_query, has_knowledge, search_with
from hutch.runtimes.client import RuntimeTarget, complete, ready_runtime
from hutch.turns.media import (
    IMAGE_TYPES,
    NO_VISION,
    VOICE_FAILED,
    ReadFile,
    ReadMedia,
    images_of,
    prompt_with_documents,
    read_again,
    stored_file,
)
from hutch.turns.repository import TurnRepository
from hutch.turns.spend import CallSize, Held, hold_cents
from hutch.turns.tools import KNOWLEDGE_TOP_K, TimeLeft, TurnTools

MANAGER_ROLE = "manager"
PROVIDER_FAILURES_ALERT = 20  # failed answers per provider in 5 minutes that make an admin alert
# What the channel that runs the turn writes with its stored message (the inbox event's link to it, the
# chat's count), carried by phase 1's last statement: it commits with the turn's own writes, and a busy row
# (a widget's daily count) is locked only from that statement to the commit.
Record = Callable[[Message], Carried]
# What the channel writes with the answer (given its text), carried by the one statement that stores it: a
# busy row (a bot's daily count) is then locked only while that statement runs.
AnswerCarries = Callable[[str], Carried]


# Channels where people who are not members talk to an agent; the APIs for outside programs count as one
# when the call names its end user (`user`, `metadata.user_id`: "api:<id>").
STRANGER_CHANNELS = frozenset({"telegram", "whatsapp", "webchat", "voice"})
API_CHANNELS = frozenset({"openai_api", "anthropic_api"})
API_END_USER = "api:"


def stranger(agent: Agent, channel: str, end_user: str | None) -> bool:
    """Whether the turn's end user is a person the per-person limits apply to: someone on a public agent's
    messenger, widget or voice line, or an API call's named end user. Not a member's own chat (the
    dashboard, an API key without `user`), a personal agent's linked owner, or a task's step."""
    if end_user is None or agent.audience is Audience.PERSONAL:
        return False
    if channel in STRANGER_CHANNELS:
        return True
    return channel in API_CHANNELS and end_user.startswith(API_END_USER)


# (org id, channel, end user, what the owner reads): a per-person refusal, for the inbox.
LimitedNote = tuple[str, str, str, str]


def _limited_note(
    agent: Agent, channel: str, end_user: str | None, refused: HutchError
) -> LimitedNote | None:
    """What to note on the person when ``refused`` is the first refusal of a per-person limit in its window
    (later ones in the window write nothing)."""
    if not isinstance(refused, EndUserRateLimited) or not refused.first or end_user is None:
        return None
    return agent.org_id, channel, end_user, f"{refused.note} ({agent.name})"[:200]


class AgentPaused(Conflict):
    def __init__(self) -> None:
        super().__init__("This agent is paused; set its status to active to chat with it.")


@dataclass(frozen=True)
class PromptReads:
    """What a turn's model call needs from the database besides the agent: read in phase 1."""

    facts: list[str]  # remembered about the end user
    org_name: str = "your organisation"
    # Unless the caller sends the history with each message (OpenAI clients):
    summary: str | None = None  # of the older part of the conversation
    history: list[Message] = field(default_factory=list)  # the newest before this one, within the budget
    passages: list[tuple[str, str]] = field(default_factory=list)  # (title, text) from the agent's documents
    searchable: bool = False  # the agent has documents: it gets the search tool
    runtime: RuntimeTarget | None = None  # the agent's dedicated runtime, when it is ready
    connected: list[ConnectedTool] = field(default_factory=list)  # the org's tools the agent enables
    language: str | None = None  # the end user's, as their channel tells it: a hint for the model


@dataclass
class Turn:
    agent: Agent
    channel: str
    end_user: str | None
    prompt: str | None
    reads: PromptReads
    # The stored exchange; None when nothing about it is kept (an OpenAI call without `user`, a task step).
    conversation: Conversation | None = None
    user_message: Message | None = None
    # False when the caller sends the history with each message (OpenAI clients): the stored conversation
    # is then a record, never a prompt, so it is not compacted.
    stored_history: bool = True
    reference: str = field(default_factory=lambda: new_id("turn"))  # the ledger's, when nothing is stored
    # A member has taken the conversation over: the message is stored, the agent does not answer.
    held: bool = False
    # Files sent with the message (stored with it in phase 1); images go to the model, documents' text joins
    # the prompt (hutch.turns.media).
    files: list[ReadFile] = field(default_factory=list)
    # What the turn answers without asking the model (a voice note not transcribed, an image for a model
    # that cannot see), and why, kept with the answer.
    notice: str | None = None
    notice_error: str | None = None
    # Calls to outside tools the plan still allows this month (read after phase 1); None: no limit.
    tool_budget: ToolBudget | None = None
    # The task and step a task's turn works on: its browser is the task's, kept between steps.
    task_id: str | None = None
    task_step: int | None = None
    # What the caller adds to the agent's instructions (a task's description and progress): given to the
    # engine with them, or to the agent's dedicated runtime as a system message.
    context: list[str] = field(default_factory=list)
    # Whether the plan gives the agent its browser, and how many the org may have open (read after phase
    # 1); then the turn's browser, whose downloads are kept with the answer.
    browser_plan: BrowserPlan | None = None
    browser: AgentBrowser | None = None
    # What phase 1 held of the key's budget and the org's credits (each further model request adds to it),
    # released by phase 3.
    hold: Held | None = None

    @property
    def stored(self) -> tuple[Conversation, Message]:
        assert self.conversation is not None and self.user_message is not None, "an unstored turn"
        return self.conversation, self.user_message


@dataclass(frozen=True)
class BrowserPlan:
    allowed: bool
    at_once: int | None


@dataclass
class Answer:
    turn: Turn
    message: Message | None  # None for an unstored turn
    outcome: TurnOutcome

    @property
    def text(self) -> str:
        return self.outcome.text


class TurnFlow:
    """The owner of a turn's three phases; built on the unit of work of whoever runs it (a request, a job,
    the voice worker), whose transactions the phases commit (``UnitOfWork.checkpoint``)."""

    def __init__(
        self,
        uow: UnitOfWork,
        resources: WorkerResources,
        *,
        api_key_id: str | None = None,
        key_budget_cents: int | None = None,
        time_left: TimeLeft | None = None,
    ) -> None:
        self.uow = uow
        # Voice sessions count the time running sessions use before they are charged; None: not tracked.
        self.time_left = time_left
        self.api_key_id = api_key_id  # the API key asking, whose monthly budget pays for the answer
        self.key_budget_cents = key_budget_cents  # its monthly budget; None: no budget
        self.session = uow.session
        self.resources = resources
        self.settings = resources.settings
        self.conversations = ConversationService(uow.session)
        self.turns = TurnRepository(uow.session)
        self._keys: dict[str, dict[str, Credentials]] = {}  # org id → its provider keys, read once per flow
        # The process's limiter: API processes and workers count in the same store (PostgreSQL or Redis).
        self.quotas = Quotas(uow.session, resources.plans, resources.rate_limiter)

    @classmethod
    def of_caller(cls, uow: UnitOfWork, resources: WorkerResources, principal: Principal) -> TurnFlow:
        """The flow of a request's caller: an API key's answers are paid from its monthly budget."""
        return cls(
            uow,
            resources,
            api_key_id=principal.api_key_id,
            key_budget_cents=principal.api_key_budget_cents,
        )

    def continued_on(self, uow: UnitOfWork) -> TurnFlow:
        """This flow on another unit of work (a stream's, which outlives its request's): the org, its plan and
        its provider keys stay known."""
        flow = TurnFlow(
            uow,
            self.resources,
            api_key_id=self.api_key_id,
            key_budget_cents=self.key_budget_cents,
            time_left=self.time_left,
        )
        flow._keys = dict(self._keys)
        flow.quotas = self.quotas.on(uow.session)
        return flow

    async def find_agent(self, principal: Principal, ref: str) -> Agent | None:
        """The caller's agent named by id or slug; its org and provider keys come with it for the turn."""
        found = await AgentRepository(self.session).to_answer(principal, ref)
        if found is None:
            return None
        self.quotas.knows(found.org)
        self.knows_keys(found.org.id, found.encrypted_keys)
        return found.agent

    def knows_keys(self, org_id: str, encrypted: list[EncryptedKey]) -> None:
        """The org's provider keys, read by the caller with its own rows: the turn reads them no more."""
        self._keys[org_id] = decrypted(self.resources.secret_box, encrypted)

    async def models_for(self, agent: Agent) -> tuple[ResolvedModel, ResolvedModel | None]:
        """The agent's model and fallback with their keys, or 409 saying which key is missing."""
        return self._resolve(agent, await self._org_keys(agent.org_id))

    def _resolve(
        self, agent: Agent, keys: dict[str, Credentials]
    ) -> tuple[ResolvedModel, ResolvedModel | None]:
        primary = self.resources.llm.resolve(agent.model, keys)
        fallback = None
        if agent.fallback_model:
            try:
                fallback = self.resources.llm.resolve(agent.fallback_model, keys)
            except Conflict:
                fallback = None  # an unusable fallback must not block the primary model
        return primary, fallback

    async def _org_keys(self, org_id: str) -> dict[str, Credentials]:
        keys = self._keys.get(org_id)
        if keys is None:
            keys = self._keys[org_id] = await org_credentials(self.session, self.resources.secret_box, org_id)
        return keys

    # --- phase 1 -----------------------------------------------------------------------------------------

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
        record: Record | None = None,
        profile: EndUserProfile | None = None,
        media: ReadMedia | None = None,
        size: CallSize | None = None,
    ) -> Turn:
        """Phase 1 of a stored turn: admit, store the message and read what the model call needs; committed
        (with ``record``'s writes and the turn's jobs) before this returns. A refusal (paused agent, a limit,
        a blocked end user) rolls everything back and raises. On a conversation a member has taken over, the
        message is stored and nothing more: the turn is ``held``, with nothing to answer and nothing counted.

        ``caller_waits``: the sender waits for the answer, so the commit need not wait for the disk (see
        ``NO_FLUSH_WAIT``). ``profile``: who the channel says the end user is, kept when a conversation
        opens. ``media``: files sent with the message, read beforehand (``hutch.turns.media``), stored with
        it. ``size``: what the caller sends beside the stored conversation (an API call's own history)."""
        try:
            turn = await self._admit_and_store(
                agent, channel, end_user, text, conversation_id, stored_history, caller_waits, profile
            )
            if media is not None:
                self._with_files(turn, media)
                await self._meter_transcriptions(agent.org_id, media.files)
            recorded = record(turn.stored[1]) if record is not None else NOTHING
            if not turn.held:
                # The org's counters row is shared by all its turns: the reservation comes last, after the
                # rates (whose limiter may take a connection of its own), so it is held for the few round
                # trips of the hold and the commit, and no connection is awaited while it is held.
                await self.session.flush()
                reservation = await self.quotas.message_reservation(agent.org_id)
                await self._settle(agent, await self.turns.run_alone(reservation + recorded))
                await self._hold_spend(turn, turn.stored[1].id, size or CallSize())
            elif recorded.ctes:
                await self.turns.run_alone(recorded)
            await self.uow.checkpoint()
        except HutchError as refused:
            limited = _limited_note(agent, channel, end_user, refused)  # read before the rollback expires it
            await self.uow.rollback()
            if limited is not None:
                await self._note_limited(limited)
            raise
        return await self._after_commit(turn)

    async def begin_unstored(
        self,
        agent: Agent,
        channel: str,
        end_user: str | None,
        prompt: str | None,
        *,
        reference: str | None = None,
        admit: bool = True,
        on_runtime: bool = False,
        size: CallSize | None = None,
    ) -> Turn:
        """Phase 1 of a turn whose exchange is not kept (an OpenAI call without `user`, a task step): admit
        and count the message (unless ``admit`` is false: a task's steps were admitted with the task), read
        the facts (with an end user) and the org, and with ``on_runtime`` the agent's dedicated runtime when
        it is ready (``outcome`` then asks it); committed before this returns."""
        try:
            if admit:
                await self._admit(agent)
            else:
                await self.models_for(agent)  # a missing provider key answers before anything runs
            # Read with the person's facts: a blocked end user is refused before the rates count them.
            facts = await self._facts_unless_blocked(agent, channel, end_user)
            if admit:
                await self._admit_rates(agent, channel, end_user)
                reservation = await self.quotas.message_reservation(agent.org_id)
                reserved = await self.quotas.repository.write(reservation)
                await self.quotas.settle_reservation(agent.org_id, reserved)
            reads = PromptReads(
                facts,
                await self._org_name(agent.org_id),
                runtime=await self._runtime(agent) if on_runtime else None,
            )
            turn = Turn(agent, channel, end_user, prompt, reads, stored_history=False)
            if reference is not None:
                turn.reference = reference
            if admit:  # a task's steps were admitted, and are charged, with the task
                await self._hold_spend(turn, turn.reference, size or CallSize())
            await self.uow.checkpoint()
        except HutchError as refused:
            limited = _limited_note(agent, channel, end_user, refused)  # read before the rollback expires it
            await self.uow.rollback()
            if limited is not None:
                await self._note_limited(limited)
            raise
        return await self._after_commit(turn)

    async def _facts_unless_blocked(self, agent: Agent, channel: str, end_user: str | None) -> list[str]:
        """An unstored turn's facts about its end user, in one statement that also says whether the org
        blocked them: a blocked end user is refused (403) on every path, stored or not."""
        if end_user is None:
            return []
        carried = MemoryRepository.facts_carried(agent.id, end_user, self.settings.memories_in_prompt)
        read = await self.turns.run_alone(
            carried + EndUserRepository.blocked_carried(agent.org_id, channel, end_user)
        )
        if read["end_user_blocked"]:
            raise EndUserBlocked()
        return list(read["facts"] or [])

    async def _admit(self, agent: Agent) -> None:
        """Admission, the same for every turn: the agent answers, the org is not suspended, a model can
        answer, the caps leave room. The rates (:meth:`_admit_rates`) come once the caller knows the person
        is not blocked; quotas reserved with the message after them (``_settle``)."""
        if agent.status is not AgentStatus.ACTIVE:
            raise AgentPaused()
        # A suspended org's agents answer nothing; its row is read once per turn for the plan anyway.
        refuse_suspended_org(await self.quotas.org(agent.org_id))
        primary, fallback = await self.models_for(agent)  # refuse before storing anything when none answers
        if not primary.byok or (fallback is not None and not fallback.byok):
            # Past a cap (or what is left of it held by calls in flight): refused before any write.
            key, credits = await self._payers(agent)
            await SpendHolds(self.session).check(agent.org_id, datetime.now(UTC), key=key, credits=credits)

    async def _admit_rates(self, agent: Agent, channel: str, end_user: str | None) -> None:
        """The person within the agent's per-person limits (strangers only), the org within its plan's
        rate: both counted on the shared limiter, so they come after the block check (a blocked person
        costs nothing, not even a place in the org's minute)."""
        person = None
        if end_user is not None and stranger(agent, channel, end_user):
            person = Person(
                agent.id, end_user, agent.end_user_messages_per_minute, agent.end_user_messages_per_day
            )
        await self.quotas.admit_message(agent.org_id, person)

    async def _note_limited(self, limited: LimitedNote) -> None:
        """The first refusal of a person past a per-person limit in its window, noted on the person for the
        inbox (the turn's own writes are rolled back already); later ones in the window write nothing."""
        await EndUserRepository(self.session).note_limited(*limited, datetime.now(UTC))
        await self.uow.checkpoint()

    async def resume(self, message_id: str) -> Turn | None:
        """A stored turn whose phase 1 committed but whose answer was not stored (the job running it stopped):
        its reads, again, without admitting or storing the message twice. None when the message is gone or
        already answered."""
        message = await self.session.get(Message, message_id)
        if message is None:
            return None
        conversation = await self.session.get(Conversation, message.conversation_id)
        agent = await self.session.get(Agent, conversation.agent_id) if conversation else None
        if conversation is None or agent is None:
            return None
        if await MessageRepository(self.session).answered_after(conversation.id, message.seq):
            return None
        if conversation.status is ConversationStatus.TAKEN_OVER and conversation.closed_at is None:
            held = Turn(agent, conversation.channel, conversation.end_user, message.content, PromptReads([]))
            held.conversation, held.user_message, held.held = conversation, message, True
            return held
        await self.models_for(agent)
        facts = await MemoryRepository(self.session).facts(
            agent.id, conversation.end_user, self.settings.memories_in_prompt
        )
        reads = await self._prompt_reads(agent, conversation, message, facts)
        turn = Turn(
            agent, message.channel or conversation.channel, conversation.end_user, message.content, reads
        )
        turn.conversation, turn.user_message = conversation, message
        turn.hold = Held(message.id)  # what the stopped attempt held, if anything, goes with the answer
        self._resumed_files(turn, await AttachmentRepository(self.session).with_data_of_message(message.id))
        await self.uow.checkpoint()
        return await self._after_commit(turn)

    async def _admit_and_store(
        self,
        agent: Agent,
        channel: str,
        end_user: str,
        text: str,
        conversation_id: str | None,
        stored_history: bool,
        caller_waits: bool,
        profile: EndUserProfile | None = None,
    ) -> Turn:
        await self._admit(agent)
        # Most messages go to the open conversation in one statement that also reads the end user's facts. The
        # conversation is locked before the counters (reserved by ``begin``), in the order ``finish`` takes
        # them: turns of one conversation taking them in opposite orders would deadlock. A refusal rolls the
        # new conversation and message back with everything else.
        also = MemoryRepository.facts_carried(agent.id, end_user, self.settings.memories_in_prompt)
        also += EndUserRepository.blocked_carried(agent.org_id, channel, end_user)
        if caller_waits:
            also += NO_FLUSH_WAIT
        conversation, message, carried = await self.conversations.add_user_message(
            agent, channel, end_user, text, conversation_id, carrying=also, profile=profile
        )
        if carried is None:  # the message opened its conversation (or named one): carried work runs alone
            carried = await self.turns.run_alone(also)
        if carried["end_user_blocked"]:
            raise EndUserBlocked()
        await self._admit_rates(agent, channel, end_user)  # refused: the rollback takes the message back
        if conversation.status is ConversationStatus.TAKEN_OVER and conversation.closed_at is None:
            # The member holding it answers: nothing is read for a model, nothing reserved or counted.
            return Turn(agent, channel, end_user, text, PromptReads([]), conversation, message, held=True)
        facts = list(carried["facts"] or [])
        if stored_history:
            summary = (carried["summary"], carried["summary_covers"]) if "summary" in carried else None
            reads = await self._prompt_reads(agent, conversation, message, facts, summary)
        else:
            reads = PromptReads(facts, await self._org_name(agent.org_id))
        language = (profile.language if profile else None) or carried.get("end_user_language")
        if language:
            reads = replace(reads, language=language)
        return Turn(agent, channel, end_user, text, reads, conversation, message, stored_history)

    def _with_files(self, turn: Turn, media: ReadMedia) -> None:
        """The files sent with the turn's message, stored in phase 1's transaction; and the answer a model
        need not give (a voice note not transcribed, an image for a model that cannot see)."""
        conversation, message = turn.stored
        attachments = AttachmentRepository(self.session)
        for file in media.files:
            attachments.add(stored_file(file, message, conversation.id))
        turn.files = list(media.files)
        turn.notice, turn.notice_error = media.unanswered, media.error
        if turn.notice is None and any(f.kind is AttachmentKind.IMAGE for f in media.files):
            primary, _ = self._resolve(turn.agent, self._keys.get(turn.agent.org_id, {}))
            if not primary.spec.vision:
                turn.notice = gettext(NO_VISION)

    async def _meter_transcriptions(self, org_id: str, files: list[ReadFile]) -> None:
        """The voice notes transcribed for this message, on the org's usage of the day with what they cost;
        written in phase 1's transaction, with the message that keeps their transcript."""
        seconds = sum(f.duration_seconds or 0 for f in files if f.transcribed)
        if not seconds:
            return
        cost = round(seconds * self.settings.transcription_cost_micro_usd_per_minute / 60)
        counts = UsageCounts(
            transcription_seconds=math.ceil(seconds), transcription_cost_micro_usd=cost, cost_micro_usd=cost
        )
        await self.turns.run_alone(self.quotas.counters(org_id, datetime.now(UTC), counts))

    def _resumed_files(self, turn: Turn, stored: list[MessageAttachment]) -> None:
        files = [read_again(attachment) for attachment in stored]
        media = ReadMedia(files=files)
        if any(f.kind is AttachmentKind.AUDIO and not f.transcribed for f in files):
            media.unanswered = gettext(VOICE_FAILED)
        turn.files, turn.notice = files, media.unanswered
        if turn.notice is None and any(f.kind is AttachmentKind.IMAGE for f in files):
            primary, _ = self._resolve(turn.agent, self._keys.get(turn.agent.org_id, {}))
            if not primary.spec.vision:
                turn.notice = gettext(NO_VISION)

    async def _settle(self, agent: Agent, reserved: dict[str, Any]) -> None:
        """Refuse a message over the plan's quotas (the caller rolls back); queue the notice it reaches."""
        plan = await self.quotas.settle_reservation(agent.org_id, reserved)
        percent = quota_notice_due(plan, self.quotas.month_count)
        if percent is not None:
            self.uow.defer(QUOTA_NOTICE_JOB, org_id=agent.org_id, percent=percent)

    async def _hold_spend(self, turn: Turn, reference: str, size: CallSize) -> None:
        """Phase 1's last writes: the turn's largest likely cost held against the paying API key's budget and
        the org's credits until phase 3 meters the answer (``hutch.billing.holds``); 402 or 429 when the
        caps leave no room. Nothing is held when neither pays (or the org's own provider keys answer)."""
        agent = turn.agent
        if turn.held or turn.notice is not None:
            return
        key, credits = await self._payers(agent)
        if key is None and not credits:
            return
        primary, fallback = self._resolve(agent, await self._org_keys(agent.org_id))
        reads = turn.reads
        known = [agent.system_prompt, turn.prompt or "", reads.summary or "", *reads.facts]
        known += [m.content for m in reads.history]
        amount = hold_cents(
            [m for m in (primary, fallback) if m is not None and not m.byok],
            known_chars=sum(map(len, known)) + size.input_chars,
            documents=agent.has_documents,
            files=bool(turn.files),
            max_tokens=size.max_tokens or agent.max_tokens,
            settings=self.settings,
        )
        requests = 1
        if reads.runtime is not None and agent.tools:
            # A dedicated runtime runs the tool loop itself: each of its requests is held up front.
            requests = MAX_MODEL_REQUESTS_PER_TURN
        holds = SpendHolds(self.session)
        now = datetime.now(UTC)
        if await holds.take(reference, agent.org_id, amount * requests, now, key=key, credits=credits):
            turn.hold = Held(reference, amount if requests == 1 else 0, key, credits)

    def _hold_more(self, turn: Turn) -> HoldMore | None:
        """For the engine: hold one more model request of the turn's tool loop, in a short unit of work of
        its own; why the turn must stop, when the caps leave no room."""
        held, org_id = turn.hold, turn.agent.org_id
        if held is None or held.request_cents <= 0:
            return None

        async def hold_more() -> str | None:
            try:
                async with unit_of_work(self.resources.database, None) as uow:
                    await SpendHolds(uow.session).extend(
                        held.reference,
                        org_id,
                        held.request_cents,
                        datetime.now(UTC),
                        key=held.key,
                        credits=held.credits,
                    )
                    await uow.checkpoint()
            except HutchError as refused:
                return gettext("I had to stop before finishing: {reason}").format(reason=refused.detail)
            return None

        return hold_more

    async def _payers(self, agent: Agent) -> tuple[tuple[str, int] | None, bool]:
        """Who pays for the turn's answer: the API key asking and its monthly budget (None: no budget), and
        whether the org's credits do (pay-per-use plans)."""
        key = None
        if self.api_key_id is not None and self.key_budget_cents is not None:
            key = (self.api_key_id, self.key_budget_cents)
        return key, (await self.quotas.plan_of(agent.org_id)).pay_per_use

    async def _prompt_reads(
        self,
        agent: Agent,
        conversation: Conversation,
        message: Message,
        facts: list[str],
        summary: tuple[str | None, int | None] | None = None,
    ) -> PromptReads:
        """With the end user's facts: the conversation's summary (read here unless ``summary`` gives its
        text and the last message it covers) and the newest messages before ``message`` after it, within
        the history budget; the org's name; the runtime that answers, if any."""
        text, history = None, []
        if message.seq > 1:  # the conversation's first message has no history nor a summary of one
            if summary is None:
                stored = await MemoryRepository(self.session).summary_of(conversation.id)
                summary = (stored.content, stored.covers_until_seq) if stored else (None, None)
            text, covered = summary[0], summary[1] or 0
            recent = await MessageRepository(self.session).recent(
                conversation.id, self.settings.history_messages + 1, before_seq=message.seq
            )
            earlier = [m for m in recent if m.seq > covered and m.id != message.id]
            history = select_history(earlier, self.settings.history_token_budget)
        return PromptReads(
            facts,
            await self._org_name(agent.org_id),
            text,
            history,
            runtime=await self._runtime(agent),
        )

    async def _org_name(self, org_id: str) -> str:
        org = await self.quotas.org(org_id)
        return org.name if org else "your organisation"

    async def _runtime(self, agent: Agent) -> RuntimeTarget | None:
        if agent.placement is not Placement.DEDICATED:
            return None
        return await ready_runtime(self.session, self.resources.secret_box, agent.id)

    async def _after_commit(self, turn: Turn) -> Turn:
        """What phase 1 reads once its writes are committed: the tool budget, then the passages."""
        if not turn.held and reaches_outside(turn.agent.tools):
            turn.tool_budget = await self.quotas.tool_calls_left(turn.agent.org_id)
            if BROWSER in turn.agent.tools:
                limits = (await self.quotas.plan_of(turn.agent.org_id)).limits
                turn.browser_plan = BrowserPlan(limits.browser, limits.browsers)
            turn.reads = replace(turn.reads, connected=await self._connected(turn))
            await self.uow.checkpoint()
        return await self._with_passages(turn)

    async def _with_passages(self, turn: Turn) -> Turn:
        """The turn with the passages of the agent's documents that best match the message, read after phase
        1's commit: the question's embedding (perhaps a provider's HTTP call) is computed holding no
        connection, then one short read searches."""
        agent = turn.agent
        if not agent.has_documents or turn.held:
            return turn
        vector = await embed_query(
            self.resources.embedder, await self._org_keys(agent.org_id), turn.prompt or ""
        )
        searchable = await has_knowledge(self.session, agent)
        passages: list[tuple[str, str]] = []
        if searchable and turn.prompt:
            found = await search_with(
                self.session, self.resources.embedder, agent, turn.prompt, KNOWLEDGE_TOP_K, vector
            )
            passages = fit_passages(found, self.settings.knowledge_prompt_tokens)
        await self.uow.checkpoint()  # ends the read: nothing is held while the model answers
        turn.reads = replace(turn.reads, passages=passages, searchable=searchable)
        return turn

    async def _connected(self, turn: Turn) -> list[ConnectedTool]:
        """The connected tools (MCP servers', webhook tools) the agent enables, decrypted for phase 2."""
        agent = turn.agent
        if turn.reads.runtime is not None or not any(is_connected(name) for name in agent.tools):
            return []  # a dedicated runtime answers without them
        return await read_connected(self.session, self.resources.secret_box, agent.org_id, agent.tools)

    # --- phase 2 -----------------------------------------------------------------------------------------

    def request(
        self,
        turn: Turn,
        *,
        history: list[ModelMessage] | None = None,
        extra_instructions: Sequence[str] = (),
        external_tools: Sequence[ToolDefinition] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> TurnRequest:
        """Everything the engine needs, from what phase 1 read: reads nothing. ``history``: the caller's,
        when it sends the conversation with each call (else the stored one). Every way to the model builds
        one, so a conversation a member holds is refused here."""
        if turn.held:
            raise TakenOver()
        agent, reads = turn.agent, turn.reads
        primary, fallback = self._resolve(agent, self._keys[agent.org_id])  # keys read in phase 1
        now = datetime.now(UTC)
        tools = list(agent.tools)
        if reads.searchable:
            tools.append("search_knowledge")
        turn.browser = self._browser(turn)
        if turn.browser is None and BROWSER in tools:
            tools.remove(BROWSER)  # the plan leaves it out: the model is not offered it
        instructions = build_instructions(
            PromptContext(
                agent=agent,
                org_name=reads.org_name,
                channel=turn.channel,
                now=now,
                facts=reads.facts,
                summary=reads.summary,
                knowledge=reads.passages,
                extra=[*turn.context, *extra_instructions],
                language=reads.language,
            )
        )
        helpers = TurnTools(self.resources, agent, self.time_left)
        deps = EngineDeps(
            facts=helpers.facts(),
            settings=self.settings,
            agent=agent,
            org_id=agent.org_id,
            org_name=reads.org_name,
            end_user=turn.end_user,
            conversation_id=turn.conversation.id if turn.conversation else None,
            channel=turn.channel,
            now=now,
            balance=lambda: helpers.balance_and_usage_words(now),
            knowledge=helpers.search_words,
            team=helpers.team(),
            handoff=_handoff(helpers, turn.conversation.id) if turn.conversation else None,
            browser=turn.browser,
            sees_screen=primary.spec.computer_use,
        )
        return TurnRequest(
            instructions=instructions,
            history=to_model_messages(reads.history) if history is None else history,
            prompt=prompt_with_documents(turn.prompt, turn.files, self.settings.attachment_prompt_tokens),
            deps=deps,
            primary=primary,
            fallback=fallback,
            tools=tools,
            temperature=float(agent.temperature) if temperature is None else temperature,
            max_tokens=agent.max_tokens if max_tokens is None else max_tokens,
            external_tools=list(external_tools),
            extra_tools=build_tools(reads.connected, self.resources.mcp, self.settings, taken=tools),
            meter=self._meter(turn),
            media=images_of(turn.files),
            hold_more=self._hold_more(turn),
        )

    def _browser(self, turn: Turn) -> AgentBrowser | None:
        """The turn's browser, when the agent enables it and its plan allows it."""
        plan = turn.browser_plan
        if plan is None or not plan.allowed or (plan.at_once is not None and plan.at_once <= 0):
            return None
        scope = BrowserScope(
            org_id=turn.agent.org_id,
            agent_id=turn.agent.id,
            conversation_id=turn.conversation.id if turn.conversation else None,
            task_id=turn.task_id,
            step=turn.task_step,
            reference=turn.reference,
        )
        keeper = StoredScreenshots(self.resources.screenshots, self.resources.database, self.resources.jobs)
        return AgentBrowser(
            self.resources.browsers,
            keeper,
            scope,
            plan.at_once,
            self.settings.attachment_max_mb * 1024 * 1024,
            leases=BrowserLeases(self.resources.database, self.settings.browser_idle_seconds),
        )

    def _meter(self, turn: Turn) -> ToolMeter:
        budget = turn.tool_budget
        return ToolMeter(
            remaining=budget.left if budget else None,
            limit=budget.limit if budget else None,
            cost_of=cost_per_call(self.settings),
        )

    @property
    def engine(self) -> Engine:
        return Engine(self.resources.llm, self.resources.metrics, self.settings)

    async def answer(self, turn: Turn, *, carrying: AnswerCarries | None = None) -> Answer:
        """Phases 2 and 3: the model's answer, stored and metered."""
        outcome = await self.outcome(turn)
        return await self.finish(turn, outcome, carrying=carrying)

    async def outcome(self, turn: Turn, request: TurnRequest | None = None) -> TurnOutcome:
        """Phase 2 alone: the answer of the agent's runtime or of the engine, holding no connection."""
        if turn.held:
            raise TakenOver()  # never a model call on a conversation a member holds
        if turn.notice is not None:  # answered without a model, and without cost
            return TurnOutcome(text=turn.notice, ok=True, error=turn.notice_error)
        outcome = await self._on_runtime(turn) or await self.engine.run(request or self.request(turn))
        demo = outcome.model == DEMO_MODEL
        if turn.agent.role == MANAGER_ROLE and (demo or not outcome.ok) and turn.prompt:
            # The customer is never stuck: simple requests are still understood without a model (down,
            # or the demo model, which cannot call tools).
            outcome.text = await TurnTools(self.resources, turn.agent, self.time_left).rule_based_reply(
                turn.prompt, demo=demo
            )
        return outcome

    async def stream(
        self, turn: Turn, *, carrying: AnswerCarries | None = None
    ) -> AsyncIterator[TextDelta | Answer]:
        """Phases 2 and 3 as they happen: text deltas, then the stored :class:`Answer` last."""
        if turn.agent.role == MANAGER_ROLE or turn.reads.runtime is not None or turn.notice is not None:
            # A manager acts and a runtime answers whole: the answer comes as one delta.
            answered = await self.answer(turn, carrying=carrying)
            yield TextDelta(answered.text)
            yield answered
            return
        async for event in self.engine.stream(self.request(turn)):
            if isinstance(event, TurnOutcome):
                yield await self.finish(turn, event, carrying=carrying)
            else:
                yield event

    async def _on_runtime(self, turn: Turn) -> TurnOutcome | None:
        """The answer of the agent's dedicated runtime, when it has one that is ready; None otherwise (the
        shared workers answer meanwhile)."""
        target = turn.reads.runtime
        if target is None:
            return None
        reads = turn.reads
        context = list(turn.context)
        if reads.summary:
            context.append(f"Summary of the conversation so far:\n{reads.summary}")
        context += [f"From [{title}]:\n{text}" for title, text in reads.passages]
        messages: list[dict[str, Any]] = (
            [{"role": "system", "content": "\n\n".join(context)}] if context else []
        )
        messages += [
            {"role": "user" if m.role is MessageRole.USER else "assistant", "content": m.content}
            for m in reads.history
        ]
        prompt = prompt_with_documents(turn.prompt, turn.files, self.settings.attachment_prompt_tokens)
        messages.append({"role": "user", "content": prompt or ""})
        # The runtime drives a browser of its own; the screens it sends are kept through the turn's browser.
        turn.browser = self._browser(turn)
        budget = turn.tool_budget
        return await complete(
            target,
            self.resources.catalog,
            messages,
            turn.end_user,
            turn.agent.slug,
            browser=turn.browser,
            tool_calls=(budget.left, budget.limit) if budget else None,
        )

    # --- phase 3 -----------------------------------------------------------------------------------------

    async def finish(
        self, turn: Turn, outcome: TurnOutcome, *, carrying: AnswerCarries | None = None
    ) -> Answer:
        """Phase 3: store the answer with the usage it counts and what ``carrying`` adds, in one statement
        (or, for an unstored turn, count it); charge credits on pay-per-use plans; commit with its jobs."""
        org_id, usage = turn.agent.org_id, _usage(outcome)
        message: Message | None = None
        if turn.conversation is None:
            await self.quotas.meter_turn(
                org_id, usage, self._ledger(), turn.reference, api_key_id=self.api_key_id
            )
            if turn.hold is not None:
                await SpendHolds(self.session).release(turn.hold.reference)
            if turn.browser is not None and turn.task_id is None:
                # A turn kept nowhere has nothing to come back to: its browser closes with it.
                await turn.browser.close()
        else:
            # The answer and the usage it counts are one statement, which locks the conversation's row first,
            # then the counters' (the order ``begin`` takes them in). Credits go in the same transaction.
            counters = self.quotas.turn_counters(org_id, usage, api_key_id=self.api_key_id)
            if turn.hold is not None:  # what phase 1 held goes as what the answer cost comes
                counters += SpendHolds.released(turn.hold.reference)
            if carrying is not None:
                counters += carrying(outcome.text)
            if await self.quotas.charges_credits(org_id, usage):
                message = await self._store_answer(turn, outcome, counters)
                await self.quotas.charge_turn(org_id, usage, self._ledger(), message.id)
            else:
                async with self.uow.alone():  # one statement, its own transaction
                    message = await self._store_answer(turn, outcome, counters)
            self._keep_downloads(turn, message)
        if not outcome.ok:
            await self._count_failure(outcome)
        if turn.conversation is not None:
            window = self.settings.history_messages
            count = turn.conversation.message_count
            # Every `window` messages once the thread is long.
            if turn.stored_history and count > 2 * window and count % window == 0:
                self.uow.defer(COMPACT_JOB, conversation_id=turn.conversation.id)
        await self.uow.checkpoint()
        return Answer(turn, message, outcome)

    def _keep_downloads(self, turn: Turn, message: Message) -> None:
        """The files the agent downloaded with its browser, attached to its answer."""
        if turn.browser is None or not turn.browser.downloads:
            return
        attachments = AttachmentRepository(self.session)
        for file in turn.browser.downloads:
            kind = AttachmentKind.IMAGE if file.content_type in IMAGE_TYPES else AttachmentKind.DOCUMENT
            read = ReadFile(kind, file.content_type, file.filename, file.data, file.text)
            attachments.add(stored_file(read, message, message.conversation_id))

    def _ledger(self) -> Ledger:
        return Ledger.of(self.uow, self.resources)

    async def _store_answer(self, turn: Turn, outcome: TurnOutcome, counters: Carried) -> Message:
        conversation, _ = turn.stored
        # Other messages may have arrived while the model answered: ``add`` counts from the locked row.
        return await self.conversations.add(
            conversation,
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


def _handoff(helpers: TurnTools, conversation_id: str) -> Callable[[str], Awaitable[str]]:
    async def handoff(reason: str) -> str:
        return await helpers.handoff(conversation_id, reason)

    return handoff


def fit_passages(found: list[Passage], budget: int) -> list[tuple[str, str]]:
    """The best passages that fit the knowledge token budget, as (title, text)."""
    chosen: list[tuple[str, str]] = []
    for passage in found:
        text = f"{passage.heading}\n{passage.text}".strip() if passage.heading else passage.text
        budget -= count_tokens(text)
        if budget < 0 and chosen:
            break
        chosen.append((passage.title, text))
    return chosen


def _usage(outcome: TurnOutcome) -> TurnUsage:
    return TurnUsage(
        outcome.input_tokens,
        outcome.output_tokens,
        outcome.cost_micro_usd,
        outcome.byok,
        outcome.metered_tool_calls,
        outcome.tool_cost_micro_usd,
    )
