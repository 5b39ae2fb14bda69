"""The instructions an agent answers with: its persona, where it works, and what it knows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from babel import Locale, UnknownLocaleError

from hutch.agents.models import Agent


@dataclass
class PromptContext:
    agent: Agent
    org_name: str
    channel: str
    now: datetime
    facts: list[str] = field(default_factory=list)
    summary: str | None = None  # compacted older turns of this conversation
    knowledge: list[tuple[str, str]] = field(default_factory=list)  # retrieved (document title, passage)
    extra: list[str] = field(default_factory=list)  # notes other domains add (balance, time left)
    language: str | None = None  # the end user's, as their channel tells it (Telegram's language_code)


def language_hint(code: str | None) -> str | None:
    """A line telling the model which language the end user's app is set to: a hint, not an order (they
    may write in another)."""
    if not code:
        return None
    try:
        name = Locale.parse(code.replace("-", "_")).english_name
    except (ValueError, TypeError, UnknownLocaleError):
        name = None
    said = f"{name} ({code})" if name else f"the language with code {code!r}"
    return f"The user's app is set to {said}: answer in it unless they write to you in another language."


def build_instructions(context: PromptContext) -> str:
    agent = context.agent
    sections = [agent.system_prompt.strip() or "You are a helpful assistant."]
    about = [
        f'Your name is "{agent.name}". You work for {context.org_name}.',
        f"Now it is {context.now:%A %d %B %Y, %H:%M} UTC. This conversation happens over {context.channel}.",
    ]
    if "remember" in agent.tools:
        about.append(
            "When the user shares something worth keeping for later (a preference, a fact about them), "
            "save it with the remember tool. Do not announce that you saved it unless asked."
        )
    hint = language_hint(context.language)
    if hint:
        about.append(hint)
    sections.append("\n".join(about))
    if context.facts:
        sections.append("What you remember about this user:\n" + "\n".join(f"- {f}" for f in context.facts))
    if context.summary:
        sections.append("Summary of the earlier part of this conversation:\n" + context.summary)
    if context.knowledge:
        passages = "\n\n".join(f"From [{title}]:\n{text}" for title, text in context.knowledge)
        sections.append(
            "Passages from the organisation's documents that may help. When you use one, cite its document "
            "title in square brackets, like [Price list]. If they do not contain the answer, say so rather "
            "than guess; the search_knowledge tool can look further.\n\n" + passages
        )
    sections.extend(context.extra)
    return "\n\n".join(sections)
