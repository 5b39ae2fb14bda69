"""Chat through Hutch's own API and dashboard: who is talking, and the answer as the API shows it."""

from __future__ import annotations

from hutch.conversations.schemas import ChatMessage, ChatResponse, Usage
from hutch.core.principal import Principal
from hutch.turns.flow import Answer

API_CHANNEL = "api"


def end_user_of(principal: Principal) -> str:
    """Who is talking, for memories and conversations: the signed-in user, or the API key."""
    return f"user:{principal.user_id}" if principal.user_id else f"key:{principal.api_key_id}"


def chat_response(answer: Answer) -> ChatResponse:
    message, outcome = answer.message, answer.outcome
    assert message is not None, "a chat turn is stored"
    return ChatResponse(
        conversation_id=answer.turn.stored[0].id,
        message=ChatMessage(
            id=message.id,
            content=message.content,
            status=message.status,
            model=message.model,
            tool_calls=message.tool_calls,
        ),
        usage=Usage(
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            cost_micro_usd=outcome.cost_micro_usd,
        ),
    )
