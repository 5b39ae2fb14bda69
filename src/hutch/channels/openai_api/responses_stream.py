"""A response streamed as the Responses API's server-sent events, in the order OpenAI's SDKs expect:
``response.created``, ``response.in_progress``, the message item and its ``response.output_text.delta``
events as the text arrives, the caller's function calls, then ``response.completed`` with the usage (or
``response.failed``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from hutch.channels.api_turn import stream_call
from hutch.channels.openai_api.responses import ResponseCall
from hutch.channels.openai_api.responses_translate import message_item
from hutch.engine.runner import TextDelta, TurnRequest
from hutch.turns.flow import Turn, TurnFlow


class ResponseEvents:
    """The events of one response, numbered in order."""

    def __init__(self, call: ResponseCall) -> None:
        self.call = call
        self.sequence = 0
        self.message_open = False

    def event(self, kind: str, **fields: Any) -> str:
        body = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(body)}\n\n"

    def started(self) -> list[str]:
        snapshot = self.call.answered("in_progress").model_dump(mode="json")
        return [
            self.event("response.created", response=snapshot),
            self.event("response.in_progress", response=snapshot),
        ]

    def _text_part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def delta(self, text: str) -> list[str]:
        events = []
        ids = {"item_id": self.call.message_id, "output_index": 0}
        if not self.message_open:
            self.message_open = True
            item = message_item(self.call.message_id, "", status="in_progress")
            events.append(self.event("response.output_item.added", output_index=0, item=item))
            events.append(
                self.event("response.content_part.added", **ids, content_index=0, part=self._text_part(""))
            )
        events.append(
            self.event("response.output_text.delta", **ids, content_index=0, delta=text, logprobs=[])
        )
        return events

    def finished(self) -> list[str]:
        call, events = self.call, []
        for index, item in enumerate(call.output):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                if not self.message_open:  # an answer that came whole
                    events += self.delta(text)
                ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
                events.append(self.event("response.output_text.done", **ids, text=text, logprobs=[]))
                events.append(self.event("response.content_part.done", **ids, part=self._text_part(text)))
            else:
                events.append(
                    self.event(
                        "response.output_item.added", output_index=index, item={**item, "arguments": ""}
                    )
                )
                ids = {"item_id": item["id"], "output_index": index}
                events.append(
                    self.event("response.function_call_arguments.delta", **ids, delta=item["arguments"])
                )
                events.append(
                    self.event(
                        "response.function_call_arguments.done",
                        **ids,
                        name=item["name"],
                        arguments=item["arguments"],
                    )
                )
            events.append(self.event("response.output_item.done", output_index=index, item=item))
        final = call.answered().model_dump(mode="json")
        events.append(self.event("response.failed" if call.failed else "response.completed", response=final))
        return events


async def stream_response(
    flow: TurnFlow, call: ResponseCall, turn: Turn, request: TurnRequest
) -> AsyncIterator[str]:
    events = ResponseEvents(call)
    for event in events.started():
        yield event
    async for step in stream_call(flow, turn, request, call.keep):
        if isinstance(step, TextDelta):
            call.streamed.append(step.text)
            for event in events.delta(step.text):
                yield event
    for event in events.finished():
        yield event
