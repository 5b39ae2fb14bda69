"""Named authorization dependencies: every route says who may call it with one of these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.accounts.models import OrgRole, User
from hutch.core.errors import Forbidden
from hutch.core.principal import Principal, Scope
from hutch.http.authentication import get_principal, get_signed_in_user

CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


class RequireScope:
    """``Depends(RequireScope(Scope.WRITE))``: 403 when the caller's scopes lack it."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        if self.scope not in principal.scopes:
            raise Forbidden(f"This credential lacks the '{self.scope.value}' scope.")
        return principal


class RequireOrgRole:
    """A signed-in user holding at least ``role`` in the current org (owner > admin > member)."""

    def __init__(self, role: str) -> None:
        self.role = OrgRole(role)

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        if not principal.is_user or principal.org_role is None:
            raise Forbidden("Only signed-in members can do this; API keys cannot.")
        if OrgRole(principal.org_role).rank < self.role.rank:
            raise Forbidden(f"Only an org {self.role.value} can do this.")
        return principal


async def require_user(principal: CurrentPrincipal) -> Principal:
    if not principal.is_user:
        raise Forbidden("This needs a signed-in user; API keys cannot do it.")
    return principal


async def require_platform_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_platform_admin or Scope.ADMIN not in principal.scopes:
        raise Forbidden("Only platform admins can do this.")
    return principal


Reader = Annotated[Principal, Depends(RequireScope(Scope.READ))]
Writer = Annotated[Principal, Depends(RequireScope(Scope.WRITE))]
Chatter = Annotated[Principal, Depends(RequireScope(Scope.CHAT))]
CurrentUser = Annotated[Principal, Depends(require_user)]
# The signed-in user outside any org (profile, creating an org, accepting an invitation).
SignedInUser = Annotated[User, Depends(get_signed_in_user)]
OrgOwner = Annotated[Principal, Depends(RequireOrgRole("owner"))]
OrgAdmin = Annotated[Principal, Depends(RequireOrgRole("admin"))]
PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]
