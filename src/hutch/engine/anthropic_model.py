"""Anthropic's models as the engine calls them: pydantic-ai's ``AnthropicModel``, which also sends a tool
marked for computer use (``hutch.engine.computer_use``) as Anthropic's ``computer`` tool.

pydantic-ai sends every function tool with a JSON schema; Anthropic's computer tool instead names its
version (``type``) and the screen's size, and needs its beta. Its calls come back as ordinary
``tool_use`` blocks and its results go as ordinary ``tool_result`` blocks (an image in their content is
sent as one), so nothing else changes. Imported when the first Anthropic model is built (the SDK takes a
second to load).
"""

from __future__ import annotations

from typing import Any, cast

from anthropic.types.beta import BetaToolComputerUse20250124Param, BetaToolParam
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.anthropic import AnthropicModel, AnthropicModelSettings
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from hutch.engine.computer_use import (
    ANTHROPIC_COMPUTER_BETA,
    ANTHROPIC_COMPUTER_TOOL,
    COMPUTER,
    computer_display,
)


class HutchAnthropicModel(AnthropicModel):
    def prepare_request(
        self, model_settings: ModelSettings | None, model_request_parameters: ModelRequestParameters
    ) -> tuple[ModelSettings | None, ModelRequestParameters]:
        prepared, parameters = super().prepare_request(model_settings, model_request_parameters)
        if not any(computer_display(tool) for tool in parameters.function_tools):
            return prepared, parameters
        settings = cast(AnthropicModelSettings, dict(prepared or {}))
        betas = list(settings.get("anthropic_betas") or [])
        if ANTHROPIC_COMPUTER_BETA not in betas:
            betas.append(ANTHROPIC_COMPUTER_BETA)
        settings["anthropic_betas"] = betas
        return settings, parameters

    def _map_tool_definition(self, f: ToolDefinition, *args: Any, **kwargs: Any) -> BetaToolParam:
        display = computer_display(f)
        if display is None:
            return super()._map_tool_definition(f, *args, **kwargs)
        tool = BetaToolComputerUse20250124Param(
            type=ANTHROPIC_COMPUTER_TOOL,
            name=COMPUTER,
            display_width_px=int(display["display_width_px"]),
            display_height_px=int(display["display_height_px"]),
        )
        # The list this joins takes any of Anthropic's tool params; pydantic-ai's signature names one.
        return cast(BetaToolParam, tool)
