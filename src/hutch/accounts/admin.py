"""Account administration for operators (the ``hutch admin`` commands): users and platform admins."""

from __future__ import annotations

from datetime import UTC, datetime

from hutch.accounts.models import User
from hutch.accounts.orgs import OrgService
from hutch.accounts.repository import UserRepository
from hutch.accounts.service import default_org_name, normalise_email
from hutch.audit.service import record_audit
from hutch.core.errors import Conflict, NotFound
from hutch.core.ids import new_id
from hutch.core.security import SecretBox, hash_password
from hutch.db.engine import UnitOfWork
from hutch.settings import Settings


async def create_user(
    uow: UnitOfWork,
    settings: Settings,
    secret_box: SecretBox,
    *,
    email: str,
    password: str,
    name: str = "",
    org_name: str | None = None,
    platform_admin: bool = False,
) -> User:
    """A user with their own org. The operator vouches for the address, so it counts as verified."""
    email = normalise_email(email)
    users = UserRepository(uow.session)
    if await users.by_email(email) is not None:
        raise Conflict(f"A user with the email {email} already exists.")
    user = User(
        id=new_id("usr"),
        email=email,
        name=name.strip(),
        password_hash=hash_password(password),
        is_platform_admin=platform_admin,
        email_verified_at=datetime.now(UTC),
    )
    uow.session.add(user)
    await uow.session.flush()
    await OrgService(uow, settings, secret_box).create(user.id, org_name or default_org_name(email, name))
    await record_audit(uow.session, action="user_created_by_operator", actor_user_id=None, target=user.id)
    if platform_admin:
        await record_audit(uow.session, action="platform_admin_granted", target=user.id)
    return user


async def set_platform_admin(uow: UnitOfWork, email: str, is_admin: bool) -> User:
    """Grant or revoke platform administration; the last platform admin cannot be revoked."""
    users = UserRepository(uow.session)
    user = await users.by_email_for_update(normalise_email(email))
    if user is None:
        raise NotFound("User", f"No user has the email {normalise_email(email)}.")
    if user.is_platform_admin == is_admin:
        return user
    if not is_admin and await users.platform_admin_count() == 1:
        raise Conflict("This is the last platform admin; grant another user first.")
    user.is_platform_admin = is_admin
    action = "platform_admin_granted" if is_admin else "platform_admin_revoked"
    await record_audit(uow.session, action=action, target=user.id)
    return user
