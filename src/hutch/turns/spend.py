"""How much a turn holds of its key's budget and its org's credits while it runs (``hutch.billing.holds``):
the most its model calls may cost, from what phase 1 knows of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_ai.messages import ModelMessage

from hutch.billing.holds import cents
from hutch.engine.gateway import ResolvedModel
from hutch.settings import Settings

INSTRUCTIONS_TOKENS = 1_000  # the instructions around the agent's persona: time, channel, tools, facts


@dataclass(frozen=True)
class Held:
    """What a turn holds (``hutch.billing.holds``): its reference, the cents each model request holds
    (0: none more), who pays (the API key and its budget; the org's credits)."""

    reference: str
    request_cents: int = 0
    key: tuple[str, int] | None = None
    credits: bool = False


@dataclass(frozen=True)
class CallSize:
    """What a caller sends beside what phase 1 reads (an API call's history and instructions, in
    characters) and the answer's token limit it asks for (None: the agent's)."""

    input_chars: int = 0
    max_tokens: int | None = None


def hold_cents(
    models: Sequence[ResolvedModel],
    *,
    known_chars: int,
    documents: bool,
    files: bool,
    max_tokens: int,
    settings: Settings,
) -> int:
    """The most one model request of the turn may cost, in whole cents, on the models that would be paid for
    (not the org's own keys): its prompt (``known_chars`` of text, the instructions, retrieved passages and
    files' text within their budgets) and ``max_tokens`` of answer. Each further request of the tool loop is
    held again before it is made (a tool's answer is not counted: the bound covers what the caller
    controls). Token counts are estimated (about four characters a token)."""
    if not models:
        return 0
    input_tokens = INSTRUCTIONS_TOKENS + -(-known_chars // 4)
    if documents:
        input_tokens += settings.knowledge_prompt_tokens
    if files:
        input_tokens += settings.attachment_prompt_tokens
    return cents(max(m.spec.cost_micro_usd(input_tokens, max_tokens) for m in models))


def chars_of(messages: Sequence[ModelMessage], texts: Sequence[str] = ()) -> int:
    """The characters of a caller's own history and instructions (``texts``), for :class:`CallSize`."""
    total = sum(map(len, texts))
    for message in messages:
        for part in message.parts:
            content = getattr(part, "content", None) or getattr(part, "args", None)
            if isinstance(content, str):
                total += len(content)
            elif isinstance(content, list):
                total += sum(len(item) for item in content if isinstance(item, str))
            elif isinstance(content, dict):
                total += len(str(content))
    return total
