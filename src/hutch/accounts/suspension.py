"""Suspending and reinstating organisations and users (platform admins), and the refusals a suspension causes.

A suspended organisation's agents answer every channel with a short notice and never ask a model (the turn's
admit phase refuses), its API keys and its members' requests answer 403 naming the suspension, and its
dedicated runtimes are stopped by a job (started again on reinstatement). A suspended user cannot sign in,
refresh a token or use a session. Nothing is deleted: reinstating restores all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hutch.accounts.models import Org, User
from hutch.accounts.repository import OrgRepository, UserRepository
from hutch.audit.service import record_audit
from hutch.core.errors import Conflict, Forbidden, NotFound
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources

# Run by the runtimes domain (its jobs), named here so suspending needs no import of it.
SUSPEND_RUNTIMES_JOB = "runtimes.suspend_org"
RESTORE_RUNTIMES_JOB = "runtimes.restore_org"


class OrgSuspended(Forbidden):
    """The organisation is suspended by the platform's operator."""

    def __init__(self, reason: str | None) -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"This organisation is suspended{why}. Its agents, API keys and dashboard are unavailable "
            "until it is reinstated; contact support."
        )


class UserSuspended(Forbidden):
    """The account is suspended by the platform's operator."""

    def __init__(self, reason: str | None) -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(f"This account is suspended{why}; contact support to have it reinstated.")


def refuse_suspended_org(org: Org | None) -> None:
    """Raise :class:`OrgSuspended` for a suspended organisation (cheap: the caller has read the row)."""
    if org is not None and org.suspended_at is not None:
        raise OrgSuspended(org.suspension_reason)


def refuse_suspended_user(user: User) -> None:
    if user.suspended_at is not None:
        raise UserSuspended(user.suspension_reason)


@dataclass(frozen=True)
class Suspension:
    id: str
    suspended_at: datetime | None
    reason: str | None


class Suspensions:
    """Suspend and reinstate; every change is written to the audit log with the admin and the reason."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session
        self.orgs = OrgRepository(uow.session)
        self.users = UserRepository(uow.session)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> Suspensions:
        return cls(uow)

    async def suspend_org(self, org_id: str, reason: str, admin: Principal, ip: str | None) -> Suspension:
        org = await self.orgs.get_for_update(org_id)
        if org is None:
            raise NotFound("Organisation")
        if org.suspended_at is not None:
            raise Conflict("This organisation is already suspended; reinstate it first to change the reason.")
        org.suspended_at, org.suspension_reason = datetime.now(UTC), reason
        self.uow.defer(SUSPEND_RUNTIMES_JOB, org_id=org.id)
        await self._audit("org_suspended", admin, ip, org_id=org.id, target=org.id, reason=reason)
        return Suspension(org.id, org.suspended_at, reason)

    async def reinstate_org(self, org_id: str, admin: Principal, ip: str | None) -> Suspension:
        org = await self.orgs.get_for_update(org_id)
        if org is None:
            raise NotFound("Organisation")
        if org.suspended_at is None:
            raise Conflict("This organisation is not suspended.")
        org.suspended_at, org.suspension_reason = None, None
        self.uow.defer(RESTORE_RUNTIMES_JOB, org_id=org.id)
        await self._audit("org_reinstated", admin, ip, org_id=org.id, target=org.id)
        return Suspension(org.id, None, None)

    async def suspend_user(self, user_id: str, reason: str, admin: Principal, ip: str | None) -> Suspension:
        if user_id == admin.user_id:
            raise Conflict("You cannot suspend yourself.")
        user = await self.users.get_for_update(user_id)
        if user is None:
            raise NotFound("User")
        if user.suspended_at is not None:
            raise Conflict("This user is already suspended; reinstate them first to change the reason.")
        user.suspended_at, user.suspension_reason = datetime.now(UTC), reason
        await self._audit("user_suspended", admin, ip, target=user.id, reason=reason)
        return Suspension(user.id, user.suspended_at, reason)

    async def reinstate_user(self, user_id: str, admin: Principal, ip: str | None) -> Suspension:
        user = await self.users.get_for_update(user_id)
        if user is None:
            raise NotFound("User")
        if user.suspended_at is None:
            raise Conflict("This user is not suspended.")
        user.suspended_at, user.suspension_reason = None, None
        await self._audit("user_reinstated", admin, ip, target=user.id)
        return Suspension(user.id, None, None)

    async def _audit(
        self,
        action: str,
        admin: Principal,
        ip: str | None,
        *,
        target: str,
        org_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        await record_audit(
            self.session,
            action=action,
            org_id=org_id,
            actor_user_id=admin.user_id,
            target=target,
            ip=ip,
            details={"reason": reason} if reason else {},
        )
