"""Users, organisations, memberships and the one-time tokens of the account flows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class OrgRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"

    @property
    def rank(self) -> int:
        return {OrgRole.MEMBER: 0, OrgRole.ADMIN: 1, OrgRole.OWNER: 2}[self]


class SsoProvider(StrEnum):
    """The single sign-on providers a deployment can configure (docs/sso.md)."""

    GOOGLE = "google"
    OIDC = "oidc"


class EmailTokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored normalised (lower case, trimmed)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Access tokens issued before this (a password change or reset) no longer work.
    sessions_valid_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Suspended by a platform admin: no sign-in, no session, no token works until reinstated.
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspension_reason: Mapped[str | None] = mapped_column(Text)
    # The dashboard's and the emails' language; None: the browser's (docs/languages.md).
    language: Mapped[str | None] = mapped_column(String(16))


class Org(TimestampMixin, Base):
    __tablename__ = "orgs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(64), default="free")
    # The language of its bots' notices (None: the deployment's default); with ``use_end_user_language``,
    # the end user's own when their channel tells it and Hutch speaks it.
    language: Mapped[str | None] = mapped_column(String(16))
    use_end_user_language: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # Suspended by a platform admin: its agents answer a notice, its keys 403, its runtimes stop.
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspension_reason: Mapped[str | None] = mapped_column(Text)
    # Members sign in through this provider only (platform admins keep their password); owners choose it.
    required_sso_provider: Mapped[SsoProvider | None] = mapped_column(str_enum(SsoProvider, "sso_provider"))


class Membership(TimestampMixin, Base):
    __tablename__ = "memberships"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[OrgRole] = mapped_column(str_enum(OrgRole, "org_role"))


class RefreshToken(TimestampMixin, Base):
    """Rotating refresh tokens: each works once; presenting a used one revokes its whole family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmailToken(TimestampMixin, Base):
    """Single-use, expiring tokens sent by email (verification, password reset); stored as SHA-256."""

    __tablename__ = "email_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[EmailTokenPurpose] = mapped_column(str_enum(EmailTokenPurpose, "email_token_purpose"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Invitation(TimestampMixin, Base):
    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_org_email", "org_id", "email"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[OrgRole] = mapped_column(str_enum(OrgRole, "org_role"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SsoIdentity(TimestampMixin, Base):
    """A provider's account linked to a Hutch user: found by (provider, subject), never by email alone."""

    __tablename__ = "sso_identities"
    __table_args__ = (
        UniqueConstraint("provider", "subject"),
        UniqueConstraint("user_id", "provider"),  # one account of each provider per person
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[SsoProvider] = mapped_column(str_enum(SsoProvider, "sso_provider"))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320))  # as the provider last said it, normalised


class SsoUsedState(Base):
    """The ``state`` of each completed single sign-on callback, kept while its attempt could still be
    replayed: an attempt signs in once, even if its cookie comes back with another code."""

    __tablename__ = "sso_used_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the state
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
