"""Who is calling: a user (access token) or an API key, acting in one organisation, with scopes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    CHAT = "chat"
    ADMIN = "admin"  # platform administration; only platform admins hold it


USER_SCOPES = frozenset({Scope.READ, Scope.WRITE, Scope.CHAT})


class PrincipalKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    org_id: str
    scopes: frozenset[Scope]
    user_id: str | None = None
    org_role: str | None = None  # the user's role in org_id; None for API keys
    is_platform_admin: bool = False
    api_key_id: str | None = None
    api_key_budget_cents: int | None = None  # the key's monthly budget; None: no budget
    agent_ids: frozenset[str] | None = None  # an API key restricted to these agents

    @property
    def is_user(self) -> bool:
        return self.kind is PrincipalKind.USER

    def can_use_agent(self, agent_id: str) -> bool:
        return self.agent_ids is None or agent_id in self.agent_ids
