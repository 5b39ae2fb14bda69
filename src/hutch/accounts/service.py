"""Signup, login, token refresh and logout: the rules of getting into Hutch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hutch.accounts.email_links import EmailLinks
from hutch.accounts.models import Org, RefreshToken, User
from hutch.accounts.oidc_gateway import provider_label
from hutch.accounts.orgs import OrgService, checked_language
from hutch.accounts.repository import (
    MembershipRepository,
    RefreshTokenRepository,
    UserRepository,
    lock_first_user_check,
)
from hutch.accounts.schemas import MyOrg, ProfileUpdate, SignupRequest, TokenPair
from hutch.accounts.suspension import refuse_suspended_user
from hutch.audit.service import record_audit
from hutch.core.errors import Conflict, Forbidden, RateLimited, Unauthorized
from hutch.core.ids import new_id
from hutch.core.ratelimit import RateLimiter
from hutch.core.security import (
    SecretBox,
    create_access_token,
    hash_password,
    new_opaque_token,
    sha256_hex,
    verify_password,
)
from hutch.db.engine import UnitOfWork
from hutch.i18n import N_, Wording
from hutch.settings import Settings

LOGIN_WINDOW_SECONDS = 15 * 60
LOGIN_FAILURES_PER_EMAIL = 10
LOGIN_FAILURES_PER_IP = 50
# The password hash of an account made through a provider: no password matches it (one can be set later
# with "Forgot password").
NO_PASSWORD = ""


class InvalidCredentials(Unauthorized):
    """Wrong email or password; the failed attempt stays in the audit log."""

    keeps_changes = True

    def __init__(self) -> None:
        super().__init__(Wording(N_("Incorrect email or password.")))


class RefreshTokenRejected(Unauthorized):
    """A used, revoked or expired refresh token; reuse revokes the whole family, which must persist."""

    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("This refresh token is no longer valid; log in again.")


class PasswordSignInRefused(Forbidden):
    """An org of this person requires single sign-on: the password is right, but not the way in."""

    keeps_changes = True  # the refused attempt stays in the audit log

    def __init__(self, org_name: str, provider_label: str) -> None:
        super().__init__(
            Wording(
                N_(
                    '{org} requires signing in with {label}: use the "Sign in with {label}" button '
                    "instead of your password."
                ),
                org=org_name,
                label=provider_label,
            )
        )


def normalise_email(email: str) -> str:
    return email.strip().lower()


def default_org_name(email: str, name: str | None) -> str:
    who = (name or "").strip() or email.split("@", 1)[0]
    return f"{who}'s org"


@dataclass(frozen=True)
class NewAccount:
    email: str
    name: str | None
    password_hash: str  # NO_PASSWORD: the account signs in through its linked provider only
    org_name: str | None = None
    invitation_token: str | None = None
    email_verified: bool = False  # the provider vouched for the address
    via: str | None = None  # the provider of a sign-up through single sign-on (audit)


@dataclass
class SignupResult:
    user: User
    org: Org
    tokens: TokenPair


class AuthService:
    def __init__(
        self, uow: UnitOfWork, settings: Settings, rate_limiter: RateLimiter, secret_box: SecretBox
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self.settings = settings
        self.rate_limiter = rate_limiter
        self.secret_box = secret_box
        self.users = UserRepository(uow.session)

    async def signup(self, request: SignupRequest, ip: str | None) -> SignupResult:
        """Create the user and their org, or join the org that invited them (``invitation_token``)."""
        user, org = await self.create_account(
            NewAccount(
                email=str(request.email),
                name=request.name,
                password_hash=hash_password(request.password),
                org_name=request.org_name,
                invitation_token=request.invitation_token,
            ),
            ip,
        )
        tokens = await self._issue_tokens(user.id, family_id=None)
        return SignupResult(user=user, org=org, tokens=tokens)

    async def create_account(self, new: NewAccount, ip: str | None) -> tuple[User, Org]:
        """The one way an account is born (a password sign-up, or a first sign-in through a provider):
        the user, and their own org or the inviting org's membership; unverified addresses get a link."""
        email = normalise_email(new.email)
        first_user = await lock_first_user_check(self.session)
        if await self.users.by_email(email) is not None:
            raise Conflict("An account with this email already exists; log in instead.")
        user = User(
            id=new_id("usr"),
            email=email,
            name=(new.name or "").strip(),
            password_hash=new.password_hash,
            is_platform_admin=first_user,
            email_verified_at=datetime.now(UTC) if new.email_verified else None,
        )
        self.session.add(user)
        await self.session.flush()
        orgs = OrgService(self.uow, self.settings, self.secret_box)
        if new.invitation_token is not None:
            org, _ = await orgs.accept_invitation(user, new.invitation_token, ip)
        else:
            org, _ = await orgs.create(user.id, new.org_name or default_org_name(email, new.name), ip)
        await record_audit(
            self.session,
            action="signup",
            org_id=org.id,
            actor_user_id=user.id,
            target=user.id,
            ip=ip,
            details={"via": new.via} if new.via else None,
        )
        if user.email_verified_at is None:
            await EmailLinks(self.uow, self.settings, self.secret_box, self.rate_limiter).send_verification(
                user
            )
        return user, org

    async def update_profile(self, user: User, update: ProfileUpdate) -> None:
        """Change what was sent; an unknown language is refused (422) before anything changes."""
        if "language" in update.model_fields_set:
            user.language = checked_language(self.settings, update.language)
        if update.name is not None:
            user.name = update.name.strip()

    async def change_password(
        self, user_id: str, current_password: str, new_password: str, ip: str | None
    ) -> TokenPair:
        """Change the password; every other session ends and the caller gets a fresh token pair."""
        user = await self.users.get(user_id)
        if user is None or not verify_password(current_password, user.password_hash):
            raise Forbidden("The current password is not correct.")
        now = datetime.now(UTC)
        user.password_hash = hash_password(new_password)
        user.sessions_valid_after = now
        await RefreshTokenRepository(self.session).revoke_all_of_user(user.id, now)
        await record_audit(
            self.session, action="password_changed", actor_user_id=user.id, target=user.id, ip=ip
        )
        return await self._issue_tokens(user.id, family_id=None)

    async def login(self, email: str, password: str, ip: str | None) -> TokenPair:
        user = await self.authenticate(email, password, ip)
        return await self._issue_tokens(user.id, family_id=None)

    async def authenticate(
        self, email: str, password: str, ip: str | None, *, check_required_sso: bool = True
    ) -> User:
        """The user with these credentials, under the failed-login limits; records the attempt.

        A member of an org that requires single sign-on is refused once the password is known right
        (platform admins excepted: they keep a way in); linking that provider skips the check."""
        email = normalise_email(email)
        keys = [(f"login:email:{email}", LOGIN_FAILURES_PER_EMAIL)]
        if ip:
            keys.append((f"login:ip:{ip}", LOGIN_FAILURES_PER_IP))
        for key, limit in keys:
            decision = await self.rate_limiter.peek(key, limit, LOGIN_WINDOW_SECONDS)
            if not decision.allowed:
                raise RateLimited(
                    decision.retry_after, Wording(N_("Too many failed logins; try again later."))
                )
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
        refuse_suspended_user(user)  # the right password, but no way in until reinstated
        if check_required_sso and not user.is_platform_admin:
            for org, _ in await MembershipRepository(self.session).orgs_of(user.id):
                if org.required_sso_provider is not None:
                    await record_audit(
                        self.session,
                        action="login_refused_sso_required",
                        org_id=org.id,
                        actor_user_id=user.id,
                        target=user.id,
                        ip=ip,
                    )
                    raise PasswordSignInRefused(
                        org.name, provider_label(self.settings, org.required_sso_provider)
                    )
        user.last_login_at = datetime.now(UTC)
        await record_audit(self.session, action="login", actor_user_id=user.id, target=user.id, ip=ip)
        return user

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
        user = await self.users.get(stored.user_id)
        if user is not None:
            refuse_suspended_user(user)  # the token stays usable once the user is reinstated
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
