"""OpenAI's computer actions as the browser's own, and which models drive the screen."""

from __future__ import annotations

from typing import Any

import pytest

from hutch.engine.catalog import Credentials, load_catalog
from hutch.engine.computer_use import _from_openai, screen_interface
from hutch.engine.gateway import ResolvedModel
from hutch.settings import Settings


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ({"type": "screenshot"}, ("screenshot", {})),
        (
            {"type": "click", "button": "right", "x": 5, "y": 6},
            ("computer:right_click", {"coordinate": [5, 6], "text": ""}),
        ),
        (
            {"type": "click", "button": "left", "x": 5, "y": 6, "keys": ["SHIFT"]},
            ("computer:left_click", {"coordinate": [5, 6], "text": "SHIFT"}),
        ),
        ({"type": "click", "button": "back", "x": 5, "y": 6}, ("back", {})),
        (
            {"type": "double_click", "x": 1, "y": 2},
            ("computer:double_click", {"coordinate": [1, 2], "text": ""}),
        ),
        (
            {"type": "scroll", "x": 10, "y": 20, "scroll_x": 0, "scroll_y": -250},
            ("computer:scroll", {"coordinate": [10, 20], "scroll_direction": "up", "scroll_amount": 2}),
        ),
        (
            {"type": "drag", "path": [{"x": 1, "y": 1}, {"x": 5, "y": 5}, {"x": 9, "y": 9}]},
            ("computer:left_click_drag", {"start_coordinate": [1, 1], "coordinate": [9, 9]}),
        ),
        ({"type": "keypress", "keys": ["CTRL", "A"]}, ("computer:key", {"text": "CTRL+A"})),
        ({"type": "move", "x": 3, "y": 4}, ("computer:mouse_move", {"coordinate": [3, 4]})),
        ({"type": "wait"}, ("computer:wait", {"duration": 1.0})),
    ],
)
def test_openai_actions_become_the_browsers_actions(
    action: dict[str, Any], expected: tuple[str, dict[str, Any]]
) -> None:
    assert _from_openai(action) == expected


@pytest.mark.parametrize("action", [{"type": "zoom"}, {"type": "click"}, {"x": 1}])
def test_an_action_not_understood_is_refused(action: dict[str, Any]) -> None:
    with pytest.raises((KeyError, ValueError)):
        _from_openai(action)


def test_the_screen_is_offered_when_both_models_drive_it_through_one_provider() -> None:
    catalog = load_catalog(Settings(_env_file=None))

    def resolved(model_id: str) -> ResolvedModel:
        spec = catalog.models[model_id]
        return ResolvedModel(spec, catalog.providers[spec.provider], Credentials("k", None), False)

    sonnet, opus = resolved("anthropic/claude-sonnet-4-6"), resolved("anthropic/claude-opus-4-5")
    haiku, preview = resolved("anthropic/claude-haiku-4-5"), resolved("openai/computer-use-preview")
    assert screen_interface(sonnet, None) == "anthropic"
    assert screen_interface(sonnet, opus) == "anthropic"
    assert screen_interface(preview, None) == "openai"
    assert screen_interface(haiku, None) is None
    assert screen_interface(sonnet, haiku) is None
    assert screen_interface(sonnet, preview) is None
