"""OpenAI's computer-use models as the engine calls them: pydantic-ai's ``OpenAIResponsesModel`` (the
computer tool exists only on the Responses API), which also speaks OpenAI's computer tool.

pydantic-ai has no computer tool for OpenAI, so this maps it at the edges of the wire:

- the tool definition marked for computer use (``hutch.engine.computer_use``) is sent as the
  ``computer_use_preview`` tool (the browser's screen, environment ``browser``), with the
  ``truncation: auto`` the model requires;
- each ``computer_call`` the model answers becomes a call to that tool, its action as the argument, and
  is sent back as a ``computer_call``;
- the tool's answer is sent as a ``computer_call_output`` whose output is the screenshot.

A call that carries pending safety checks (the model asks a person to confirm, say, a purchase) is not
carried out: the turn ends with the checks' messages as the answer, and nothing is acknowledged on the
person's behalf. Streamed turns get the answer whole (each request is made unstreamed).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, cast

from openai.types import responses
from openai.types.responses import (
    ComputerUsePreviewToolParam,
    FunctionToolParam,
    ResponseFunctionToolCallParam,
)
from pydantic_ai import RunContext
from pydantic_ai.messages import BinaryContent, ModelMessage, ModelResponse, ToolCallPart, ToolReturnPart
from pydantic_ai.models import ModelRequestParameters, StreamedResponse
from pydantic_ai.models.openai import OpenAIResponsesModel, OpenAIResponsesModelSettings

# The wrapper pydantic-ai itself uses for a response built without streaming.
from pydantic_ai.models.openai._model_response_streaming import ModelResponseStreamedResponse
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from hutch.engine.computer_use import COMPUTER, OPENAI_COMPUTER_TOOL, computer_display

# What a computer call is answered with when the browser gave no screen (busy, or not started): the
# screenshot is required, so a blank one, and the reason as a message after it.
BLANK_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)


def _offers_computer(parameters: ModelRequestParameters) -> bool:
    return any(computer_display(tool) for tool in parameters.function_tools)


def _as_function_calls(response: responses.Response) -> responses.Response:
    """The response with its computer calls as calls to the ``computer`` function (the action as its
    argument), and those with pending safety checks as the message that stops the turn."""
    if not any(isinstance(item, responses.ResponseComputerToolCall) for item in response.output):
        return response
    output: list[Any] = []
    for item in response.output:
        if not isinstance(item, responses.ResponseComputerToolCall) or item.action is None:
            output.append(item)
        elif item.pending_safety_checks:
            checks = "; ".join(
                check.message or check.code or check.id for check in item.pending_safety_checks
            )
            words = f"I stopped before acting on the screen, which needs a person's confirmation: {checks}"
            text = responses.ResponseOutputText(type="output_text", text=words, annotations=[])
            output.append(
                responses.ResponseOutputMessage(
                    id=item.id, type="message", role="assistant", status="completed", content=[text]
                )
            )
        else:
            arguments = json.dumps({"action": item.action.model_dump(mode="json", exclude_none=True)})
            output.append(
                responses.ResponseFunctionToolCall(
                    type="function_call",
                    id=item.id,
                    call_id=item.call_id,
                    name=COMPUTER,
                    arguments=arguments,
                    status=item.status,
                )
            )
    return response.model_copy(update={"output": output})


class HutchOpenAIResponsesModel(OpenAIResponsesModel):
    def prepare_request(
        self, model_settings: ModelSettings | None, model_request_parameters: ModelRequestParameters
    ) -> tuple[ModelSettings | None, ModelRequestParameters]:
        prepared, parameters = super().prepare_request(model_settings, model_request_parameters)
        if not _offers_computer(parameters):
            return prepared, parameters
        settings = cast(OpenAIResponsesModelSettings, dict(prepared or {}))
        settings["openai_truncation"] = "auto"  # the computer-use model refuses anything else
        return settings, parameters

    def _map_tool_definition(self, f: ToolDefinition, *args: Any, **kwargs: Any) -> FunctionToolParam:
        display = computer_display(f)
        if display is None:
            return super()._map_tool_definition(f, *args, **kwargs)
        tool = ComputerUsePreviewToolParam(
            type=OPENAI_COMPUTER_TOOL,
            display_width=int(display["display_width_px"]),
            display_height=int(display["display_height_px"]),
            environment="browser",
        )
        # The list this joins takes any Responses tool param; pydantic-ai's signature names one.
        return cast(FunctionToolParam, tool)

    def _process_response(
        self,
        response: responses.Response,
        model_settings: OpenAIResponsesModelSettings,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        return super()._process_response(
            _as_function_calls(response), model_settings, model_request_parameters
        )

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncGenerator[StreamedResponse]:
        if not _offers_computer(model_request_parameters):
            async with super().request_stream(
                messages, model_settings, model_request_parameters, run_context
            ) as streamed:
                yield streamed
            return
        response = await self.request(messages, model_settings, model_request_parameters)
        yield ModelResponseStreamedResponse(
            model_request_parameters=model_request_parameters, _model_response=response
        )

    def _map_function_call(
        self, item: ToolCallPart, call_id: str, id: str | None, context: Any, **kwargs: Any
    ) -> ResponseFunctionToolCallParam:
        if item.tool_name != COMPUTER or not _offers_computer(context.model_request_parameters):
            return super()._map_function_call(item, call_id, id, context, **kwargs)
        call = {
            "type": "computer_call",
            "id": id or item.id or call_id,
            "call_id": call_id,
            "action": item.args_as_dict().get("action", {}),
            "pending_safety_checks": [],
            "status": "completed",
        }
        # The input list takes any Responses item; pydantic-ai's signature names the function call.
        return cast(ResponseFunctionToolCallParam, call)

    async def _map_tool_return_part(self, part: ToolReturnPart, context: Any) -> None:
        if part.tool_name != COMPUTER or not _offers_computer(context.model_request_parameters):
            await super()._map_tool_return_part(part, context)
            return
        items = part.content if isinstance(part.content, list) else [part.content]
        images = [item for item in items if isinstance(item, BinaryContent) and item.is_image]
        screen, media_type = (images[0].data, images[0].media_type) if images else (BLANK_PNG, "image/png")
        url = f"data:{media_type};base64,{base64.b64encode(screen).decode()}"
        context.openai_messages.append(
            {
                "type": "computer_call_output",
                "call_id": part.tool_call_id.split("|", 1)[0],
                "output": {"type": "computer_screenshot", "image_url": url},
            }
        )
        if not images:
            words = "\n".join(str(item) for item in items if isinstance(item, str))
            context.openai_messages.append(
                {"role": "user", "content": words or "The screen is not available."}
            )
