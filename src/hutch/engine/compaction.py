"""Compacting older turns of a long conversation into a summary: out of the prompt, not out of memory."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_ai import Agent as PydanticAgent

from hutch.conversations.models import Message, MessageRole
from hutch.engine.catalog import ProviderKind
from hutch.engine.gateway import LLMGateway, ResolvedModel

SUMMARY_MAX_TOKENS = 600
SUMMARY_INSTRUCTIONS = (
    "You maintain the running summary of a conversation between a user and an assistant. Merge the earlier "
    "summary (if any) with the new messages into one summary of at most 200 words. Keep facts about the "
    "user, decisions, commitments, open questions and anything the assistant promised to do. Write plain "
    "sentences; no preamble."
)


def transcript(messages: Sequence[Message]) -> str:
    return "\n".join(
        f"{'User' if m.role is MessageRole.USER else 'Assistant'}: {m.content.strip()}" for m in messages
    )


def extractive_summary(previous: str | None, messages: Sequence[Message], limit: int = 2000) -> str:
    """Without a real model (the demo), keep the beginnings of the user's messages."""
    lines = [previous] if previous else []
    lines += [f"The user said: {m.content.strip()[:200]}" for m in messages if m.role is MessageRole.USER]
    return "\n".join(lines)[-limit:]


async def summarize(
    llm: LLMGateway, model: ResolvedModel, previous: str | None, messages: Sequence[Message]
) -> str:
    """The new running summary; raises when the model fails, so the job retries later."""
    if model.provider.kind is ProviderKind.DEMO:
        return extractive_summary(previous, messages)
    prompt = f"Earlier summary:\n{previous or '(none)'}\n\nNew messages:\n{transcript(messages)}"
    agent = PydanticAgent(
        llm.build(model, temperature=0.2, max_tokens=SUMMARY_MAX_TOKENS), instructions=SUMMARY_INSTRUCTIONS
    )
    result = await agent.run(prompt)
    return str(result.output).strip()
