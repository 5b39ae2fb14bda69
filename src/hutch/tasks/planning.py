"""Plans from model output: JSON when the model follows the instructions, repaired when it nearly does.

Models answer ``{"steps": [{"title": ...}, ...]}`` most of the time; sometimes inside a code fence, with
text around it, as a bare list, or as a numbered list instead of JSON. Each of those becomes the same plan;
anything else is refused with a reason the task's owner can read.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_STEPS = 12
MAX_TITLE = 300

PLAN_INSTRUCTIONS = (
    "Plan the task below as a short list of concrete steps you can carry out with your tools and knowledge "
    f"(at most {MAX_STEPS}). Answer with JSON only, exactly in this shape: "
    '{"steps": [{"title": "first step"}, {"title": "second step"}]}'
)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(.+?)\s*$")


class PlanError(ValueError):
    """The model's answer holds no usable plan; the message says why."""


def _steps_from(data: Any) -> list[str] | None:
    if isinstance(data, dict):
        data = data.get("steps") or data.get("plan")
    if not isinstance(data, list):
        return None
    titles = []
    for item in data:
        title = item.get("title") or item.get("step") if isinstance(item, dict) else item
        if isinstance(title, str) and title.strip():
            titles.append(" ".join(title.split())[:MAX_TITLE])
    return titles or None


def _closed(fragment: str) -> str:
    """``fragment`` with the brackets it leaves open closed, for answers cut off mid-way."""
    stack: list[str] = []
    in_string = escaped = False
    for char in fragment:
        if in_string:
            escaped = char == "\\" and not escaped
            if char == '"' and not escaped:
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack:
            stack.pop()
    return fragment + ('"' if in_string else "") + "".join(reversed(stack))


def _json_candidates(text: str) -> list[str]:
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = text.find(opener), text.rfind(closer)
        if start != -1 and end > start:
            candidates.append(text[start : end + 1])
        if start != -1:
            candidates.append(_closed(text[start:].rstrip().rstrip(",")))
    return candidates


def parse_plan(text: str) -> list[dict[str, Any]]:
    """The steps in ``text`` as ``[{"title", "done": False, "output": None}]``; PlanError if none."""
    titles: list[str] | None = None
    for candidate in _json_candidates(text):
        try:
            titles = _steps_from(json.loads(candidate))
        except ValueError:
            continue
        if titles:
            break
    if not titles:  # a numbered or bulleted list, as models write when they forget the JSON
        listed = [m.group(1) for line in text.splitlines() if (m := _NUMBERED.match(line))]
        titles = [" ".join(t.split())[:MAX_TITLE] for t in listed] or None
    if not titles:
        raise PlanError("The agent's answer held no plan (no JSON steps and no numbered list).")
    if len(titles) > MAX_STEPS:
        raise PlanError(f"The plan had {len(titles)} steps; at most {MAX_STEPS} are allowed.")
    return [{"title": title, "done": False, "output": None} for title in titles]
