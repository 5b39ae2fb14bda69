"""Deleting an organisation or a user for good, as a job that can be retried and reports what it did.

The steps, each recorded in the deletion's ``report`` when done (a retry skips those done already):

1. ``export`` — a ZIP of the data, kept for the admin who asked (an account's owner deleting their own
   account downloads theirs beforehand);
2. per organisation: ``telegram`` — each bot's webhook removed (``deleteWebhook``), ``runtimes`` — the
   dedicated runtimes destroyed by their driver, ``stripe`` — the Stripe customer deleted (its subscriptions
   end with it), ``data`` — the organisation's row, with everything that belongs to it by the database's
   cascades, ``screenshots`` — the images of its agents' browser screenshots, from files or the bucket
   (everything under the org's key prefix; none can be added once its rows are gone);
3. ``users`` — the user (or the members left in no organisation), with their sessions and tokens.

An account goes with the organisations it owns alone. What a step failed on is kept (``error``), in words
that hold no secret; the job's retries, or an admin, run it again from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.orm.attributes import flag_modified

from hutch.accounts.models import Org, User
from hutch.audit.service import record_audit
from hutch.billing.stripe_gateway import StripeNotConfigured
from hutch.core.errors import Conflict, HutchError, NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.deletion.exports import Exports
from hutch.deletion.models import Deletion, DeletionStatus, Subject
from hutch.deletion.repository import DataRequestRepository, DeletionReads, OrgAtStake
from hutch.runtimes.service import driver_for, runtime_home

log = structlog.get_logger(__name__)
DELETE_JOB = "deletion.run"


class StepFailed(Exception):
    """A step of a deletion failed; the message is safe to show and to store."""


@dataclass(frozen=True)
class DeletionPreview:
    """What a deletion would remove, as it stands now: shown before anyone confirms it."""

    orgs: list[OrgAtStake]
    users: list[str]  # the emails of the accounts that go
    kept: list[str]  # members of the organisations who stay (in another organisation, or admins)


class Deletions:
    def __init__(self, uow: UnitOfWork, resources: WorkerResources) -> None:
        self.uow = uow
        self.session = uow.session
        self.resources = resources
        self.rows = DataRequestRepository(uow.session)
        self.reads = DeletionReads(uow.session)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> Deletions:
        return cls(uow, resources)

    # --- asking -----------------------------------------------------------------------------------------

    async def delete_org(self, org_id: str, admin: Principal, ip: str | None) -> Deletion:
        """Delete an organisation (platform admins): export, then remove; asking again returns the same."""
        org = await self.session.get(Org, org_id)
        if org is None:
            raise NotFound("Organisation")
        deletion = await self._ask(Subject.ORG, org.id, org.name, admin.user_id)
        await record_audit(
            self.session,
            action="org_deletion_requested",
            org_id=org.id,
            actor_user_id=admin.user_id,
            target=org.id,
            ip=ip,
            details={"deletion_id": deletion.id},
        )
        return deletion

    async def delete_user(self, user_id: str, admin: Principal, ip: str | None) -> Deletion:
        """Delete a user (platform admins), with the organisations they own alone."""
        if user_id == admin.user_id:
            raise Conflict("Delete your own account from your account page (DELETE /api/v1/users/me).")
        user = await self.session.get(User, user_id)
        if user is None:
            raise NotFound("User")
        deletion = await self._ask(Subject.USER, user.id, user.email, admin.user_id)
        await record_audit(
            self.session,
            action="user_deletion_requested",
            actor_user_id=admin.user_id,
            target=user.id,
            ip=ip,
            details={"deletion_id": deletion.id},
        )
        return deletion

    async def delete_me(self, user: User, ip: str | None) -> Deletion:
        """Delete the caller's own account (and the organisations they own alone)."""
        if user.is_platform_admin and await self.reads.platform_admin_count() == 1:
            raise Conflict("You are the last platform admin; make another user an admin first.")
        deletion = await self._ask(Subject.USER, user.id, user.email, user.id, export=False)
        await record_audit(
            self.session,
            action="account_deletion_requested",
            actor_user_id=user.id,
            target=user.id,
            ip=ip,
            details={"deletion_id": deletion.id},
        )
        return deletion

    async def preview_org(self, org_id: str) -> DeletionPreview:
        """What deleting the organisation removes: its data, and the members left in no organisation."""
        if await self.session.get(Org, org_id) is None:
            raise NotFound("Organisation")
        users = await self.reads.members_only_here(org_id)
        return DeletionPreview(
            orgs=await self.reads.orgs_at_stake([org_id]),
            users=await self.reads.emails_of(users),
            kept=await self.reads.emails_staying(org_id, users),
        )

    async def preview_user(self, user_id: str) -> DeletionPreview:
        """What deleting the account removes: it, and each organisation it is the last owner of (with the
        members left in no organisation)."""
        if await self.session.get(User, user_id) is None:
            raise NotFound("User")
        orgs = await self.reads.orgs_owned_alone(user_id)
        users = [user_id]
        kept: list[str] = []
        for org_id in orgs:
            leaving = await self.reads.members_only_here(org_id)
            users += [u for u in leaving if u not in users]
            kept += [e for e in await self.reads.emails_staying(org_id, [*users, *leaving]) if e not in kept]
        return DeletionPreview(
            orgs=await self.reads.orgs_at_stake(orgs), users=await self.reads.emails_of(users), kept=kept
        )

    async def _ask(
        self, subject: Subject, subject_id: str, label: str, requester: str | None, *, export: bool = True
    ) -> Deletion:
        found = await self.rows.unfinished_deletion_of(subject, subject_id)
        if found is not None:
            return found
        deletion = Deletion(
            id=new_id("del"),
            subject=subject,
            subject_id=subject_id,
            subject_label=label,
            requested_by_user_id=requester,
            status=DeletionStatus.PENDING,
            report={} if export else {"export": "skipped: asked by the account's owner"},
            attempts=0,
        )
        self.session.add(deletion)
        await self.session.flush()
        self.uow.defer(DELETE_JOB, deletion_id=deletion.id)
        return deletion

    async def get(self, deletion_id: str) -> Deletion:
        found = await self.rows.deletion(deletion_id)
        if found is None:
            raise NotFound("Deletion")
        return found

    async def page(self, skip: int, limit: int) -> tuple[list[Deletion], int]:
        return await self.rows.deletions(skip, limit)

    async def retry(self, deletion_id: str, admin: Principal, ip: str | None) -> Deletion:
        """Run a failed deletion again from the step it stopped at."""
        deletion = await self.rows.deletion(deletion_id, lock=True)
        if deletion is None:
            raise NotFound("Deletion")
        if deletion.status is not DeletionStatus.FAILED:
            raise Conflict(f"This deletion is {deletion.status.value}; only a failed one is retried.")
        deletion.status = DeletionStatus.PENDING
        self.uow.defer(DELETE_JOB, deletion_id=deletion.id)
        await record_audit(
            self.session, action="deletion_retried", actor_user_id=admin.user_id, target=deletion.id, ip=ip
        )
        return deletion

    # --- running (the job) ------------------------------------------------------------------------------

    async def run(self, deletion_id: str) -> str:
        deletion = await self.rows.deletion(deletion_id, lock=True)
        if deletion is None:
            return "gone"
        if deletion.status is DeletionStatus.DONE:
            return "done"
        deletion.status, deletion.attempts, deletion.error = (
            DeletionStatus.RUNNING,
            deletion.attempts + 1,
            None,
        )
        await self.uow.checkpoint()  # shows it running
        step = "plan"
        try:
            await self._plan(deletion)
            for step, action in self._steps(deletion):
                if step in deletion.report:
                    continue
                await self._done(deletion, step, await action())
        # Any failure is recorded and raised again in safe words (a client error may carry a bot token).
        except Exception as exc:  # noqa: BLE001
            deletion = await self._failed(deletion_id, step, exc)
            raise StepFailed(deletion.error or step) from None
        deletion.status, deletion.finished_at = DeletionStatus.DONE, datetime.now(UTC)
        await record_audit(
            self.session,
            action=f"{deletion.subject.value}_deleted",
            org_id=deletion.subject_id if deletion.subject is Subject.ORG else None,
            actor_user_id=deletion.requested_by_user_id,
            target=deletion.subject_id,
            details={"deletion_id": deletion.id, "report": deletion.report},
        )
        return "done"

    async def _plan(self, deletion: Deletion) -> None:
        """Which orgs and users go, decided once (before anything is removed) and kept in the report."""
        if "orgs" in deletion.report:
            return
        if deletion.subject is Subject.ORG:
            orgs = [deletion.subject_id]
            users = await self.reads.members_only_here(deletion.subject_id)
        else:
            orgs = await self.reads.orgs_owned_alone(deletion.subject_id)
            users = [deletion.subject_id]
            for org_id in orgs:
                users += [u for u in await self.reads.members_only_here(org_id) if u not in users]
        await self._done(deletion, "orgs", orgs)
        await self._done(deletion, "users_to_delete", users)

    def _steps(self, deletion: Deletion) -> list[tuple[str, Any]]:
        steps: list[tuple[str, Any]] = [("export", lambda: self._export(deletion))]
        for org_id in deletion.report["orgs"]:
            steps += [
                (f"telegram:{org_id}", lambda org_id=org_id: self._telegram(org_id)),
                (f"runtimes:{org_id}", lambda org_id=org_id: self._runtimes(org_id)),
                (f"stripe:{org_id}", lambda org_id=org_id: self._stripe(org_id)),
                (f"data:{org_id}", lambda org_id=org_id: self._data(org_id)),
                (f"screenshots:{org_id}", lambda org_id=org_id: self._screenshots(org_id)),
            ]
        steps.append(("users", lambda: self._users(deletion.report["users_to_delete"])))
        return steps

    async def _done(self, deletion: Deletion, step: str, outcome: Any) -> None:
        deletion.report = {**deletion.report, step: outcome}
        flag_modified(deletion, "report")
        await self.uow.checkpoint()  # a retry starts after the last step done

    async def _failed(self, deletion_id: str, step: str, exc: BaseException) -> Deletion:
        await self.uow.rollback()
        deletion = await self.rows.deletion(deletion_id, lock=True)
        assert deletion is not None
        # Words safe to show: a domain error's own, or the kind of failure (never a URL with a bot token).
        why = exc.detail if isinstance(exc, HutchError) else str(exc) if isinstance(exc, StepFailed) else ""
        deletion.status = DeletionStatus.FAILED
        deletion.error = f"{step}: {why or exc.__class__.__name__}"[:1000]
        log.warning("deletion step failed", deletion_id=deletion_id, step=step, error=exc.__class__.__name__)
        await self.uow.checkpoint()
        return deletion

    async def _export(self, deletion: Deletion) -> str:
        exports = Exports.of(self.uow, self.resources)
        if deletion.export_id is None:
            export = await exports.create(
                deletion.subject, deletion.subject_id, owner_user_id=deletion.requested_by_user_id
            )
            self.uow.pending_jobs.clear()  # built here and now, not by a job of its own
            deletion.export_id = export.id
        outcome = await exports.build(deletion.export_id)
        if outcome != "ready":
            raise StepFailed(f"the export could not be built ({outcome})")
        return f"ready: {deletion.export_id}"

    async def _telegram(self, org_id: str) -> str:
        bots = await self.reads.telegram_bots(org_id)
        for channel in bots:
            assert channel.token_encrypted is not None
            await self.resources.telegram.delete_webhook(
                self.resources.secret_box.decrypt(channel.token_encrypted)
            )
        return f"{len(bots)} bot webhook(s) removed"

    async def _runtimes(self, org_id: str) -> str:
        runtimes = await self.reads.runtimes(org_id)
        for runtime in runtimes:
            driver = await driver_for(
                self.resources.runtime_drivers,
                self.session,
                self.resources.settings,
                runtime.driver,
                runtime.host_id,
            )
            if driver is None:
                raise StepFailed(f"no {runtime.driver} driver for runtime {runtime.id}")
            await driver.destroy(runtime_home(self.resources.settings, runtime.agent_id), runtime.handle)
        return f"{len(runtimes)} runtime(s) destroyed"

    async def _stripe(self, org_id: str) -> str:
        account = await self.reads.billing_account(org_id)
        if account is None or account.stripe_customer_id is None:
            return "no Stripe customer"
        if self.resources.stripe is None:
            raise StripeNotConfigured()
        deleted = await self.resources.stripe.delete_customer(account.stripe_customer_id)
        return f"customer {account.stripe_customer_id} " + ("deleted" if deleted else "already gone")

    async def _data(self, org_id: str) -> str:
        removed = await self.reads.delete_org(org_id)
        return "organisation and its data deleted" if removed else "already gone"

    async def _screenshots(self, org_id: str) -> str:
        removed = await self.resources.screenshots.delete_org(org_id)
        return f"{removed} screenshot(s) removed"

    async def _users(self, user_ids: list[str]) -> str:
        return f"{await self.reads.delete_users(user_ids)} user(s) deleted"
