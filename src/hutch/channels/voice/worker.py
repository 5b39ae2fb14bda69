"""The voice worker (`hutch voice-agent`): joins the rooms Hutch's tokens dispatch it to and talks with the
caller through the agent's engine. Needs the `voice` extra (livekit-agents with OpenAI speech and Silero
voice-activity plugins): ``pip install 'hutch[voice]'``.

Speech becomes text (OpenAI STT), each utterance is one chat turn of the Hutch agent named in the token's
dispatch metadata (its persona, memories, knowledge and tools, on channel "voice"), and the answer is
spoken (OpenAI TTS). The agent knows the caller's time left and hears Hutch's "time nearly out" warnings.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import structlog

from hutch.agents.models import Agent as HutchAgent
from hutch.billing.quotas import EndUserRateLimited
from hutch.channels.voice.gateway import VOICE_AGENT_NAME, livekit_config
from hutch.channels.voice.service import VoiceSessions, time_note
from hutch.core.errors import HutchError
from hutch.db.engine import unit_of_work
from hutch.db.jobs import WorkerResources
from hutch.engine.runner import TextDelta
from hutch.i18n import N_, gettext, use_language
from hutch.turns.flow import TurnFlow
from hutch.turns.inbox import notice
from hutch.turns.language import notice_language

log = structlog.get_logger(__name__)
CHANNEL = "voice"
MISSING_EXTRA = (
    "The voice worker needs the voice extra: pip install 'hutch[voice]' (livekit-agents and its OpenAI and "
    "Silero plugins), and OPENAI_API_KEY for speech."
)


def voice_agents_available() -> bool:
    try:
        import livekit.agents
        import livekit.plugins.openai
        import livekit.plugins.silero  # noqa: F401
    except ImportError:
        return False
    return True


HELD = N_("A person from the team is looking after this conversation; they have your words and will reply.")
GONE = N_("Sorry, this assistant is no longer available.")
CANNOT_ANSWER = N_("Sorry, I cannot answer right now. Please try again later.")
TIME_WARNING = N_("Just so you know, your time is almost up.")  # on Hutch's "time nearly out" signal


async def answer_turn(
    resources: WorkerResources, agent_id: str, caller: str, text: str
) -> AsyncIterator[str]:
    """One turn of the Hutch agent, streamed: the caller's words stored first, then the answer."""

    async def time_left(org_id: str) -> int | None:  # asked by the balance tool: a short unit of its own
        async with unit_of_work(resources.database, resources.jobs) as uow:
            return await VoiceSessions(uow, resources.plans, resources.settings).time_left(org_id)

    async with unit_of_work(resources.database, resources.jobs) as uow:
        flow = TurnFlow(uow, resources, time_left=time_left)
        agent = await uow.session.get(HutchAgent, agent_id)
        if agent is None:
            yield said_in(resources, None, GONE)
            return
        # What the agent says by itself is in its org's language (a call tells no language of its own).
        language = await notice_language(uow.session, resources.settings, agent.org_id, None)
        try:
            turn = await flow.begin(agent, CHANNEL, caller, text)
        except EndUserRateLimited as refused:  # fair use: the caller hears why and when to come back
            with use_language(resources.settings, language):
                why = notice(refused)
            yield why
            return
        except HutchError:
            yield said_in(resources, language, CANNOT_ANSWER)
            return
        if turn.held:  # a member has taken the conversation over: the words are kept for them
            yield said_in(resources, language, HELD)
            return
        async for event in flow.stream(turn):
            if isinstance(event, TextDelta):
                yield event.text


def said_in(resources: WorkerResources, language: str | None, text: str) -> str:
    with use_language(resources.settings, language):
        return gettext(text)


def run(resources: WorkerResources, mode: str) -> None:  # pragma: no cover - needs LiveKit and speech
    """Start the LiveKit agents worker (blocking), registered as the agent Hutch's tokens dispatch.

    ``mode`` is livekit-agents' own command: "start" (production) or "dev" (reloads, verbose)."""
    import sys

    import livekit.agents as agents
    import livekit.rtc as rtc
    from livekit.agents import llm
    from livekit.plugins import openai, silero

    config = livekit_config(resources.settings)

    class HutchVoice(agents.Agent):  # type: ignore[misc]
        def __init__(self, agent_id: str, caller: str, note: str) -> None:
            super().__init__(instructions=note)
            self.agent_id, self.caller = agent_id, caller

        async def llm_node(
            self, chat_ctx: llm.ChatContext, tools: Any, model_settings: Any
        ) -> AsyncIterator[str]:
            said = next(
                (m.text_content for m in reversed(chat_ctx.items) if getattr(m, "role", "") == "user"), ""
            )
            async for piece in answer_turn(resources, self.agent_id, self.caller, said or ""):
                yield piece

    async def entrypoint(ctx: agents.JobContext) -> None:
        agent_id = json.loads(ctx.job.metadata or "{}").get("agent_id", "")
        await ctx.connect()
        participant = await ctx.wait_for_participant()
        left, warning = await call_opening(resources, agent_id)
        voice = HutchVoice(agent_id, participant.identity, time_note(left))
        session = agents.AgentSession(stt=openai.STT(), tts=openai.TTS(), vad=silero.VAD.load())

        def on_data(packet: rtc.DataPacket) -> None:
            if packet.topic == "hutch" and json.loads(packet.data).get("type") == "time_warning":
                session.say(warning)

        ctx.room.on("data_received", on_data)
        await session.start(room=ctx.room, agent=voice)
        await session.generate_reply(instructions="Greet the caller as your instructions say.")

    sys.argv = [sys.argv[0], mode]  # livekit-agents reads its command from the command line
    agents.cli.run_app(
        agents.WorkerOptions(
            entrypoint_fnc=entrypoint,
            agent_name=VOICE_AGENT_NAME,
            ws_url=config.url,
            api_key=config.key,
            api_secret=config.secret,
        )
    )


async def call_opening(resources: WorkerResources, agent_id: str) -> tuple[int | None, str]:
    """At the start of a call: the caller's seconds left (None: not tracked) and what they hear when Hutch
    warns that their time is nearly out, in the org's language (a call tells no language of its own)."""
    async with unit_of_work(resources.database, resources.jobs) as uow:
        agent = await uow.session.get(HutchAgent, agent_id)
        if agent is None:
            return None, said_in(resources, None, TIME_WARNING)
        language = await notice_language(uow.session, resources.settings, agent.org_id, None)
        left = await VoiceSessions(uow, resources.plans, resources.settings).time_left(agent.org_id)
    return left, said_in(resources, language, TIME_WARNING)
