"""Which earlier messages go into the prompt: the last few, within a token budget."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, UserPromptPart

from hutch.conversations.models import Message, MessageRole, MessageStatus


def estimate_tokens(text: str) -> int:
    """About four characters a token: close enough for budgeting, and no tokenizer download."""
    return math.ceil(len(text) / 4) + 4


def select_history(messages: Sequence[Message], budget_tokens: int) -> list[Message]:
    """The newest messages (oldest first) that fit the budget; failed replies are left out."""
    chosen: list[Message] = []
    spent = 0
    for message in reversed(messages):
        if message.role is MessageRole.ASSISTANT and message.status is MessageStatus.FAILED:
            continue
        cost = estimate_tokens(message.content)
        if chosen and spent + cost > budget_tokens:
            break
        chosen.append(message)
        spent += cost
    chosen.reverse()
    # A history that starts with a reply confuses some providers; start at a user message.
    while chosen and chosen[0].role is not MessageRole.USER:
        chosen.pop(0)
    return chosen


def to_model_messages(messages: Sequence[Message]) -> list[ModelMessage]:
    result: list[ModelMessage] = []
    for message in messages:
        if message.role is MessageRole.USER:
            result.append(ModelRequest(parts=[UserPromptPart(message.content)]))
        else:
            result.append(ModelResponse(parts=[TextPart(message.content)]))
    return result
