"""Small factories that put accounts straight into the database for tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, OrgRole, User
from hutch.core.ids import new_id
from hutch.core.security import create_access_token, hash_password
from hutch.settings import Settings

DEFAULT_PASSWORD = "a-long-test-password"


@dataclass
class Account:
    user: User
    org: Org
    password: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def create_account(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    org_name: str = "Test Org",
    role: OrgRole = OrgRole.OWNER,
    platform_admin: bool = False,
    org: Org | None = None,
) -> Account:
    """A user with a membership in ``org`` (a new org when None), committed in the test's transaction."""
    user = User(
        id=new_id("usr"),
        email=email or f"user-{secrets.token_hex(4)}@example.com",
        name="Test User",
        password_hash=hash_password(password),
        is_platform_admin=platform_admin,
    )
    if org is None:
        org = Org(id=new_id("org"), name=org_name, plan="free")
        session.add(org)
    session.add(user)
    await session.flush()
    session.add(Membership(org_id=org.id, user_id=user.id, role=role))
    await session.commit()
    token = create_access_token(settings.require_secret_key(), user.id, timedelta(minutes=15))
    return Account(user=user, org=org, password=password, access_token=token)
