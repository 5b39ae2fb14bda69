"""Signup, login, token refresh and logout: the rules of getting into Hutch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, OrgRole, RefreshToken, User
from hutch.accounts.repository import (
    MembershipRepository,
    RefreshTokenRepository,
    UserRepository,
    lock_first_user_check,
)
from hutch.accounts.schemas import MyOrg, SignupRequest, TokenPair
from hutch.audit.service import record_audit
from hutch.core.errors import Conflict, RateLimited, Unauthorized
from hutch.core.ids import new_id
from hutch.core.ratelimit import RateLimiter
from hutch.core.security import (
    create_access_token,
    hash_password,
    new_opaque_token,
    sha256_hex,
    verify_password,
)
from hutch.settings import Settings

LOGIN_WINDOW_SECONDS = 15 * 60
LOGIN_FAILURES_PER_EMAIL = 10
LOGIN_FAILURES_PER_IP = 50


class InvalidCredentials(Unauthorized):
    """Wrong email or password; the failed attempt stays in the audit log."""

    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("Incorrect email or password.")


class RefreshTokenRejected(Unauthorized):
    """A used, revoked or expired refresh token; reuse revokes the whole family, which must persist."""

    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("This refresh token is no longer valid; log in again.")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def default_org_name(email: str, name: str | None) -> str:
    who = (name or "").strip() or email.split("@", 1)[0]
    return f"{who}'s org"


@dataclass
class SignupResult:
    user: User
    org: Org
    tokens: TokenPair


class AuthService:
    def __init__(self, session: AsyncSession, settings: Settings, rate_limiter: RateLimiter) -> None:
        self.session = session
        self.settings = settings
        self.rate_limiter = rate_limiter
        self.users = UserRepository(session)

    async def signup(self, request: SignupRequest, ip: str | None) -> SignupResult:
        email = normalise_email(str(request.email))
        first_user = await lock_first_user_check(self.session)
        if await self.users.by_email(email) is not None:
            raise Conflict("An account with this email already exists; log in instead.")
        user = User(
            id=new_id("usr"),
            email=email,
            name=(request.name or "").strip(),
            password_hash=hash_password(request.password),
            is_platform_admin=first_user,
        )
        org = Org(
            id=new_id("org"), name=request.org_name or default_org_name(email, request.name), plan="free"
        )
        self.session.add_all([user, org])
        await self.session.flush()
        self.session.add(Membership(org_id=org.id, user_id=user.id, role=OrgRole.OWNER))
        await record_audit(
            self.session, action="signup", org_id=org.id, actor_user_id=user.id, target=user.id, ip=ip
        )
        tokens = await self._issue_tokens(user.id, family_id=None)
        return SignupResult(user=user, org=org, tokens=tokens)

    async def login(self, email: str, password: str, ip: str | None) -> TokenPair:
        email = normalise_email(email)
        keys = [(f"login:email:{email}", LOGIN_FAILURES_PER_EMAIL)]
        if ip:
            keys.append((f"login:ip:{ip}", LOGIN_FAILURES_PER_IP))
        for key, limit in keys:
            decision = await self.rate_limiter.peek(key, limit, LOGIN_WINDOW_SECONDS)
            if not decision.allowed:
                raise RateLimited(decision.retry_after, "Too many failed logins; try again later.")
        user = await self.users.by_email(email)
        if not verify_password(password, user.password_hash if user else None) or user is None:
            for key, limit in keys:
                await self.rate_limiter.hit(key, limit, LOGIN_WINDOW_SECONDS)
            await record_audit(
                self.session,
                action="login_failed",
                actor_user_id=user.id if user else None,
                target=email,
                ip=ip,
            )
            raise InvalidCredentials()
        user.last_login_at = datetime.now(UTC)
        await record_audit(self.session, action="login", actor_user_id=user.id, target=user.id, ip=ip)
        return await self._issue_tokens(user.id, family_id=None)

    async def refresh(self, refresh_token: str) -> TokenPair:
        repo = RefreshTokenRepository(self.session)
        stored = await repo.by_hash_for_update(sha256_hex(refresh_token))
        now = datetime.now(UTC)
        if stored is None:
            raise RefreshTokenRejected()
        if stored.used_at is not None or stored.revoked_at is not None:
            # A token presented twice was stolen or replayed: end every session of its family.
            await repo.revoke_family(stored.family_id, now)
            await record_audit(
                self.session,
                action="refresh_token_reused",
                actor_user_id=stored.user_id,
                target=stored.family_id,
            )
            raise RefreshTokenRejected()
        if stored.expires_at <= now:
            raise RefreshTokenRejected()
        stored.used_at = now
        return await self._issue_tokens(stored.user_id, family_id=stored.family_id)

    async def logout(self, refresh_token: str) -> None:
        repo = RefreshTokenRepository(self.session)
        stored = await repo.by_hash_for_update(sha256_hex(refresh_token))
        if stored is not None:
            await repo.revoke_family(stored.family_id, datetime.now(UTC))

    async def my_orgs(self, user_id: str) -> list[MyOrg]:
        rows = await MembershipRepository(self.session).orgs_of(user_id)
        return [MyOrg(id=org.id, name=org.name, plan=org.plan, role=m.role.value) for org, m in rows]

    async def _issue_tokens(self, user_id: str, family_id: str | None) -> TokenPair:
        refresh = new_opaque_token("rt_")
        self.session.add(
            RefreshToken(
                id=new_id("rtk"),
                user_id=user_id,
                family_id=family_id or new_id("fam"),
                token_hash=sha256_hex(refresh),
                expires_at=datetime.now(UTC) + timedelta(days=self.settings.refresh_token_days),
            )
        )
        await self.session.flush()
        access = create_access_token(
            self.settings.require_secret_key(), user_id, timedelta(minutes=self.settings.access_token_minutes)
        )
        return TokenPair(access_token=access, refresh_token=refresh)
