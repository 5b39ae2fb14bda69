"""Single-use, expiring links sent by email: address verification and password reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hutch.accounts.models import EmailToken, EmailTokenPurpose, User
from hutch.accounts.repository import EmailTokenRepository, RefreshTokenRepository, UserRepository
from hutch.audit.service import record_audit
from hutch.core.errors import BadRequest, Conflict, RateLimited
from hutch.core.ids import new_id
from hutch.core.ratelimit import RateLimiter
from hutch.core.security import SecretBox, hash_password, new_opaque_token, sha256_hex
from hutch.db.engine import UnitOfWork
from hutch.i18n import _, current_language, language_for, ngettext, use_language
from hutch.notifications.service import queue_email
from hutch.settings import Settings

RESET_REQUESTS_PER_HOUR = 3
VERIFICATION_EMAILS_PER_HOUR = 5


class InvalidLink(BadRequest):
    """The link's token is unknown, used or expired."""

    def __init__(self) -> None:
        super().__init__("This link is invalid, expired or already used; request a new one.")


def greeting(user: User) -> str:
    return _("Hi {name},").format(name=user.name) if user.name else _("Hi,")


def email_language(settings: Settings, user: User) -> str:
    """An email to a person is in their chosen language, else in the one they are reading Hutch in now."""
    return language_for(settings, user.language, current_language())


class EmailLinks:
    def __init__(
        self, uow: UnitOfWork, settings: Settings, secret_box: SecretBox, rate_limiter: RateLimiter
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self.settings = settings
        self.secret_box = secret_box
        self.rate_limiter = rate_limiter
        self.tokens = EmailTokenRepository(uow.session)

    async def send_verification(self, user: User) -> None:
        if user.email_verified_at is not None:
            raise Conflict("This email address is already verified.")
        decision = await self.rate_limiter.hit(f"verify_email:{user.id}", VERIFICATION_EMAILS_PER_HOUR, 3600)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "Too many verification emails; try again later.")
        hours = self.settings.email_verification_hours
        token = await self._issue(user, EmailTokenPurpose.VERIFY_EMAIL, timedelta(hours=hours))
        link = f"{self.settings.base_url}/verify-email?token={token}"
        with use_language(self.settings, email_language(self.settings, user)):
            queue_email(
                self.uow,
                self.secret_box,
                to=user.email,
                subject=_("Confirm your email address"),
                body=greeting(user)
                + "\n\n"
                + ngettext(
                    "Please confirm your email address by opening this link "
                    "(it works once, for %(num)d hour):",
                    "Please confirm your email address by opening this link "
                    "(it works once, for %(num)d hours):",
                    hours,
                )
                % {"num": hours}
                + f"\n\n{link}\n\n"
                + _("If you did not create an account, you can ignore this email.")
                + "\n",
                kind="verify_email",
            )

    async def verify_email(self, token: str) -> User:
        user = await self._consume(token, EmailTokenPurpose.VERIFY_EMAIL)
        if user.email_verified_at is None:
            user.email_verified_at = datetime.now(UTC)
            await record_audit(self.session, action="email_verified", actor_user_id=user.id, target=user.id)
        return user

    async def request_password_reset(self, email: str, ip: str | None) -> None:
        """Email a reset link if the account exists. The caller answers the same either way."""
        decision = await self.rate_limiter.hit(f"password_reset:{email}", RESET_REQUESTS_PER_HOUR, 3600)
        user = await UserRepository(self.session).by_email(email)
        if user is None or not decision.allowed:
            return
        minutes = self.settings.password_reset_minutes
        token = await self._issue(user, EmailTokenPurpose.RESET_PASSWORD, timedelta(minutes=minutes))
        link = f"{self.settings.base_url}/reset-password?token={token}"
        with use_language(self.settings, email_language(self.settings, user)):
            queue_email(
                self.uow,
                self.secret_box,
                to=user.email,
                subject=_("Reset your password"),
                body=greeting(user)
                + "\n\n"
                + _("Someone (hopefully you) asked to reset the password of this account.")
                + " "
                + ngettext(
                    "Choose a new password here (the link works once, for %(num)d minute):",
                    "Choose a new password here (the link works once, for %(num)d minutes):",
                    minutes,
                )
                % {"num": minutes}
                + f"\n\n{link}\n\n"
                + _("If you did not ask for this, ignore this email: your password stays as it is.")
                + "\n",
                kind="reset_password",
            )
        await record_audit(
            self.session, action="password_reset_requested", actor_user_id=user.id, target=user.id, ip=ip
        )

    async def reset_password(self, token: str, new_password: str, ip: str | None) -> User:
        user = await self._consume(token, EmailTokenPurpose.RESET_PASSWORD)
        now = datetime.now(UTC)
        user.password_hash = hash_password(new_password)
        # Whoever held the old password loses every session; the link proved the mailbox, too.
        user.sessions_valid_after = now
        user.email_verified_at = user.email_verified_at or now
        await RefreshTokenRepository(self.session).revoke_all_of_user(user.id, now)
        await record_audit(
            self.session, action="password_reset", actor_user_id=user.id, target=user.id, ip=ip
        )
        return user

    async def _issue(self, user: User, purpose: EmailTokenPurpose, ttl: timedelta) -> str:
        now = datetime.now(UTC)
        await self.tokens.use_up_unused(user.id, purpose, now)
        token = new_opaque_token()
        self.session.add(
            EmailToken(
                id=new_id("etk"),
                user_id=user.id,
                purpose=purpose,
                token_hash=sha256_hex(token),
                expires_at=now + ttl,
            )
        )
        await self.session.flush()
        return token

    async def _consume(self, token: str, purpose: EmailTokenPurpose) -> User:
        stored = await self.tokens.by_hash_for_update(sha256_hex(token), purpose)
        now = datetime.now(UTC)
        if stored is None or stored.used_at is not None or stored.expires_at <= now:
            raise InvalidLink()
        stored.used_at = now
        user = await UserRepository(self.session).get(stored.user_id)
        if user is None:
            raise InvalidLink()
        return user
