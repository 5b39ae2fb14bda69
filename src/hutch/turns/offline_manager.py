"""The manager agent without its model: deploy, status and help, recognised by keywords, so a customer is
never stuck while the model cannot be reached (or none is configured: the demo)."""

from __future__ import annotations

import re

from hutch.agents.roles import ROLE_TEMPLATES
from hutch.engine.deps import TeamActions

_DEPLOY = re.compile(r"\b(deploy|hire|create|need|want|add)\b", re.IGNORECASE)
_STATUS = re.compile(r"\b(status|team|employees|how are|what.*doing|tasks?)\b", re.IGNORECASE)
_ROLES = {
    "sales": "sales",
    "lead": "sales",
    "support": "support",
    "customer": "support",
    "research": "researcher",
    "executive": "executive_assistant",
    "assistant": "assistant",
}
OFFLINE = "(My AI model is unreachable right now, so I followed simple commands.)"
DEMO = "(Demo — no AI: I follow simple commands until a model provider is configured.)"
HELP = (
    'I can deploy an employee ("I need a sales assistant that follows up leads every morning"), report on '
    'the team ("status"), or list tasks ("tasks").'
)


async def rule_based_reply(team: TeamActions, text: str, *, demo: bool = False) -> str:
    """The manager without its model: deploy, status and help, recognised by keywords."""
    lowered = text.lower()
    note = DEMO if demo else OFFLINE
    if _DEPLOY.search(text):
        role = next((r for word, r in _ROLES.items() if word in lowered), "assistant")
        name = ROLE_TEMPLATES[role].title
        return f"{await team.deploy(role, name, text, dedicated=False)} {note}"
    if _STATUS.search(text):
        body = await team.status() if "task" not in lowered else await team.tasks(None)
        return f"{body}\n{note}"
    return f"{HELP} {note}"
