"""Dashboard sign-ins: a random token in an HTTP-only cookie, its hash in ``web_sessions``.

Sessions slide: each use within the last days of its life extends it, up to ``LIFETIME`` from the last use.
A password change (``users.sessions_valid_after``) ends every session started before it, as it does for
API access tokens. Changes are protected against cross-site requests by a per-session CSRF token that
forms and scripts send back, on top of ``SameSite=Lax`` cookies.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from hutch.accounts.models import User
from hutch.core.security import sha256_hex
from hutch.web.models import WebSession
from hutch.web.session_repository import WebSessionRepository

COOKIE = "hutch_session"
CSRF_COOKIE = "hutch_csrf"  # for the forms shown before signing in (double submit)
LIFETIME = timedelta(days=14)
TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class SignedIn:
    web_session: WebSession
    user: User


class WebSessions:
    def __init__(self, session: AsyncSession) -> None:
        self.web_sessions = WebSessionRepository(session)

    async def start(self, user: User, org_id: str | None) -> str:
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        user.last_active_at = now  # signing in is activity
        await self.web_sessions.add(
            WebSession(
                id=sha256_hex(token),
                user_id=user.id,
                org_id=org_id,
                csrf_token=secrets.token_urlsafe(32),
                expires_at=now + LIFETIME,
                last_seen_at=now,
            )
        )
        return token

    async def find(self, token: str) -> SignedIn | None:
        web_session = await self.web_sessions.get(sha256_hex(token))
        now = datetime.now(UTC)
        if web_session is None or web_session.expires_at <= now:
            return None
        user = await self.web_sessions.user(web_session.user_id)
        if user is None or (
            user.sessions_valid_after is not None and web_session.created_at < user.sessions_valid_after
        ):
            return None
        if now - web_session.last_seen_at >= TOUCH_EVERY:
            web_session.last_seen_at, web_session.expires_at = now, now + LIFETIME
        if user.last_active_at is None or now - user.last_active_at >= TOUCH_EVERY:
            user.last_active_at = now
        return SignedIn(web_session, user)

    async def show_org(self, token: str, org_id: str) -> None:
        """The org this browser's pages show from now on (the caller checked the user belongs to it)."""
        web_session = await self.web_sessions.get(sha256_hex(token))
        if web_session is not None:
            web_session.org_id = org_id

    async def end(self, token: str) -> None:
        await self.web_sessions.delete(sha256_hex(token))


def same_token(sent: str | None, expected: str) -> bool:
    return bool(sent) and hmac.compare_digest(str(sent).encode(), expected.encode())


def set_session_cookie(response: Response, secure: bool, token: str) -> None:
    """``secure`` when the browser reached Hutch over HTTPS (behind a proxy: its X-Forwarded-Proto)."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
