"""Organisations: creating them, members and their roles, and invitations by email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hutch.accounts.models import Invitation, Membership, Org, OrgRole, User
from hutch.accounts.repository import (
    InvitationRepository,
    MembershipRepository,
    OrgRepository,
    UserRepository,
)
from hutch.accounts.schemas import OrgUpdate
from hutch.audit.service import record_audit
from hutch.core.errors import BadRequest, Conflict, Forbidden, InvalidField, NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.security import SecretBox, new_opaque_token, sha256_hex
from hutch.db.engine import UnitOfWork
from hutch.i18n import N_, _, current_language, is_supported, language_for, languages, ngettext, use_language
from hutch.notifications.service import queue_email
from hutch.settings import Settings


class InvalidInvitation(BadRequest):
    def __init__(self) -> None:
        super().__init__("This invitation is invalid, expired, revoked or already used; ask for a new one.")


class LastOwner(Conflict):
    def __init__(self) -> None:
        super().__init__("An organisation needs at least one owner; make someone else owner first.")


ROLE_NAMES = {OrgRole.OWNER: N_("owner"), OrgRole.ADMIN: N_("admin"), OrgRole.MEMBER: N_("member")}


def checked_language(settings: Settings, code: str | None) -> str | None:
    """``code`` as a language Hutch has a catalogue for (``es-ES`` → ``es``); None stays None (no choice)."""
    if code is None:
        return None
    found = is_supported(settings, code)
    if found is None:
        speaks = ", ".join(languages(settings))
        raise InvalidField("language", f"No translation is installed for '{code}'; choose one of: {speaks}.")
    return found


@dataclass(frozen=True)
class Member:
    user: User
    membership: Membership


class OrgService:
    def __init__(self, uow: UnitOfWork, settings: Settings, secret_box: SecretBox) -> None:
        self.uow = uow
        self.session = uow.session
        self.settings = settings
        self.secret_box = secret_box
        self.orgs = OrgRepository(uow.session)
        self.memberships = MembershipRepository(uow.session)
        self.invitations = InvitationRepository(uow.session)

    async def create(self, user_id: str, name: str, ip: str | None = None) -> tuple[Org, Membership]:
        org = Org(id=new_id("org"), name=name.strip(), plan="free")
        self.session.add(org)
        await self.session.flush()
        membership = Membership(org_id=org.id, user_id=user_id, role=OrgRole.OWNER)
        self.session.add(membership)
        await self.session.flush()
        await self.session.refresh(membership)
        await record_audit(
            self.session, action="org_created", org_id=org.id, actor_user_id=user_id, target=org.id, ip=ip
        )
        return org, membership

    async def current(self, principal: Principal) -> Org:
        org = await self.orgs.get(principal.org_id)
        if org is None:
            raise NotFound("Organisation")
        return org

    async def current_with_member_count(self, principal: Principal) -> tuple[Org, int]:
        org = await self.current(principal)
        return org, await self.orgs.member_count(org.id)

    async def rename(self, principal: Principal, name: str) -> Org:
        org = await self.current(principal)
        org.name = name.strip()
        await record_audit(
            self.session, action="org_renamed", org_id=org.id, actor_user_id=principal.user_id, target=org.id
        )
        return org

    async def update(self, principal: Principal, update: OrgUpdate) -> Org:
        """Rename it and set its bots' notices' language, as sent; an unknown language is refused (422)
        before anything changes."""
        org = await self.current(principal)
        if "language" in update.model_fields_set:
            org.language = checked_language(self.settings, update.language)
        if update.use_end_user_language is not None:
            org.use_end_user_language = update.use_end_user_language
        if update.name is not None:
            await self.rename(principal, update.name)
        return org

    async def members(self, principal: Principal) -> list[Member]:
        return [Member(u, m) for u, m in await self.memberships.members_of(principal.org_id)]

    async def change_role(self, principal: Principal, user_id: str, role: OrgRole) -> Member:
        owners = await self.memberships.lock_owners(principal.org_id)
        membership = await self.memberships.get(principal.org_id, user_id)
        user = await UserRepository(self.session).get(user_id)
        if membership is None or user is None:
            raise NotFound("Member")
        previous = membership.role
        if previous is OrgRole.OWNER and role is not OrgRole.OWNER and owners == [user_id]:
            raise LastOwner()
        membership.role = role
        if previous is not role:
            await record_audit(
                self.session,
                action="role_changed",
                org_id=principal.org_id,
                actor_user_id=principal.user_id,
                target=user_id,
                details={"from": previous.value, "to": role.value},
            )
        return Member(user, membership)

    async def remove_member(self, principal: Principal, user_id: str) -> None:
        """Owners remove anyone; any member may remove themselves (leave)."""
        leaving = user_id == principal.user_id
        if not leaving and principal.org_role != OrgRole.OWNER.value:
            raise Forbidden("Only an org owner can remove other members.")
        owners = await self.memberships.lock_owners(principal.org_id)
        membership = await self.memberships.get(principal.org_id, user_id)
        if membership is None:
            raise NotFound("Member")
        if membership.role is OrgRole.OWNER and owners == [user_id]:
            raise LastOwner()
        await self.session.delete(membership)
        await record_audit(
            self.session,
            action="member_left" if leaving else "member_removed",
            org_id=principal.org_id,
            actor_user_id=principal.user_id,
            target=user_id,
        )

    async def invite(self, principal: Principal, email: str, role: OrgRole) -> Invitation:
        assert principal.org_role is not None
        if role.rank > OrgRole(principal.org_role).rank:
            raise Forbidden(f"An org {principal.org_role} cannot invite an {role.value}.")
        org = await self.current(principal)
        existing = await UserRepository(self.session).by_email(email)
        if existing is not None and await self.memberships.get(org.id, existing.id) is not None:
            raise Conflict("This person is already a member of the organisation.")
        now = datetime.now(UTC)
        await self.invitations.revoke_pending_for(org.id, email, now)  # a new invitation replaces the old
        token = new_opaque_token()
        invitation = Invitation(
            id=new_id("inv"),
            org_id=org.id,
            email=email,
            role=role,
            token_hash=sha256_hex(token),
            invited_by_user_id=principal.user_id,
            expires_at=now + timedelta(days=self.settings.invitation_days),
        )
        self.session.add(invitation)
        await self.session.flush()
        await self.session.refresh(invitation)
        link = f"{self.settings.base_url}/invitations/accept?token={token}"
        days = self.settings.invitation_days
        # In the invited person's language when they have chosen one, else in the inviter's.
        language = language_for(self.settings, existing.language if existing else None, current_language())
        with use_language(self.settings, language):
            queue_email(
                self.uow,
                self.secret_box,
                to=email,
                subject=_("You are invited to join {org}").format(org=org.name),
                body=_("Hi,")
                + "\n\n"
                + _("You are invited to join {org} as {role}.").format(org=org.name, role=_(ROLE_NAMES[role]))
                + " "
                + ngettext(
                    "Accept here (the link works once, for %(num)d day):",
                    "Accept here (the link works once, for %(num)d days):",
                    days,
                )
                % {"num": days}
                + f"\n\n{link}\n\n"
                + _(
                    "If you do not have an account yet, you can create one from that page with this email "
                    "address."
                )
                + "\n",
                kind="invitation",
            )
        await record_audit(
            self.session,
            action="invitation_created",
            org_id=org.id,
            actor_user_id=principal.user_id,
            target=email,
            details={"role": role.value, "invitation_id": invitation.id},
        )
        return invitation

    async def pending_invitations(self, principal: Principal) -> list[Invitation]:
        return await self.invitations.pending_in_org(principal.org_id, datetime.now(UTC))

    async def revoke_invitation(self, principal: Principal, invitation_id: str) -> None:
        invitation = await self.invitations.get_in_org(principal.org_id, invitation_id)
        if invitation is None:
            raise NotFound("Invitation")
        if invitation.accepted_at is None and invitation.revoked_at is None:
            invitation.revoked_at = datetime.now(UTC)
            await record_audit(
                self.session,
                action="invitation_revoked",
                org_id=principal.org_id,
                actor_user_id=principal.user_id,
                target=invitation.email,
            )

    async def open_invitation(self, token: str) -> tuple[Invitation, Org]:
        """The usable invitation behind a token (locked), or :class:`InvalidInvitation`."""
        invitation = await self.invitations.by_hash_for_update(sha256_hex(token))
        if (
            invitation is None
            or invitation.accepted_at is not None
            or invitation.revoked_at is not None
            or invitation.expires_at <= datetime.now(UTC)
        ):
            raise InvalidInvitation()
        org = await self.orgs.get(invitation.org_id)
        if org is None:
            raise InvalidInvitation()
        return invitation, org

    async def accept_invitation(
        self, user: User, token: str, ip: str | None = None
    ) -> tuple[Org, Membership]:
        invitation, org = await self.open_invitation(token)
        if invitation.email != user.email:
            raise Forbidden(
                "This invitation was sent to another email address; sign in with that address to accept it."
            )
        now = datetime.now(UTC)
        invitation.accepted_at = now
        # The token arrived by email to this address, which proves the mailbox.
        user.email_verified_at = user.email_verified_at or now
        membership = await self.memberships.get(org.id, user.id)
        if membership is None:
            membership = Membership(org_id=org.id, user_id=user.id, role=invitation.role)
            self.session.add(membership)
            await self.session.flush()
            await self.session.refresh(membership)
        await record_audit(
            self.session,
            action="invitation_accepted",
            org_id=org.id,
            actor_user_id=user.id,
            target=invitation.id,
            ip=ip,
        )
        return org, membership
