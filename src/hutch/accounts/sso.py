"""Single sign-on: the rules of signing up, signing in, linking and unlinking through an OpenID provider,
and of orgs that require one (docs/sso.md).

- A person is found by the provider and its subject, never by email alone.
- A first sign-in whose email has no account creates the account and its org, as a password sign-up does.
  The address counts as verified when the provider says so; otherwise Hutch emails its own link, and the
  account cannot be used until it is confirmed.
- A first sign-in whose email already has an account links nothing by itself: the person types that
  account's password once (or signs in with it and links the provider from their account page).
- Unlinking is refused when it would leave no way to sign in.
- An org can require one provider: its members (platform admins aside) then sign in through it only.
"""

from __future__ import annotations

import json
import secrets
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from hutch.accounts.email_links import EmailLinks
from hutch.accounts.models import SsoIdentity, SsoProvider, User
from hutch.accounts.oidc_gateway import ProviderIdentity, SsoProviders, provider_label
from hutch.accounts.repository import MembershipRepository, OrgRepository, UserRepository
from hutch.accounts.service import NO_PASSWORD, AuthService, NewAccount
from hutch.accounts.sso_repository import SsoIdentityRepository, SsoStateRepository
from hutch.accounts.suspension import refuse_suspended_user
from hutch.audit.service import record_audit
from hutch.core.errors import BadRequest, Conflict, Forbidden, HutchError, NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.ratelimit import RateLimiter
from hutch.core.security import SecretBox, sha256_hex
from hutch.db.engine import UnitOfWork
from hutch.i18n import N_, Wording
from hutch.settings import Settings

ATTEMPT_SECONDS = 10 * 60  # from the click on "Sign in with ..." to the provider's answer


class SignInExpired(BadRequest):
    """The sign-in did not start in this browser, is too old, or was already used."""

    def __init__(self) -> None:
        super().__init__(
            Wording(
                N_(
                    "This sign-in did not start in this browser, took too long or was already used; "
                    "start again."
                )
            )
        )


class SsoSignInRefused(Forbidden):
    """The provider proved who this is, but this person may not sign in this way."""


@dataclass(frozen=True)
class SignInAttempt:
    """What the browser carries, sealed, from the start of a sign-in to its callback."""

    provider: str
    state: str
    nonce: str
    code_verifier: str
    next: str = "/app"
    link_user_id: str | None = None  # linking a provider to this signed-in user, from the account page
    issued_at: float = 0.0

    @classmethod
    def start(cls, provider: SsoProvider, next: str, link_user_id: str | None = None) -> SignInAttempt:
        return cls(
            provider=provider.value,
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(48),  # 64 characters: within PKCE's 43 to 128
            next=next,
            link_user_id=link_user_id,
            issued_at=time.time(),
        )

    def seal(self, box: SecretBox) -> str:
        """Encrypted and authenticated: the browser can neither read the verifier nor change a field."""
        return box.encrypt(json.dumps(asdict(self)))

    @classmethod
    def open(cls, box: SecretBox, sealed: str | None, provider: str, state: str | None) -> SignInAttempt:
        """The attempt this browser started for this provider and state, or :class:`SignInExpired`."""
        if not sealed or not state:
            raise SignInExpired()
        try:
            attempt = cls(**json.loads(box.decrypt(sealed)))
        except (ValueError, TypeError):
            raise SignInExpired() from None
        fresh = 0 <= time.time() - attempt.issued_at <= ATTEMPT_SECONDS
        same_state = secrets.compare_digest(attempt.state.encode(), state.encode())
        if not fresh or not same_state or attempt.provider != provider:
            raise SignInExpired()
        return attempt


@dataclass(frozen=True)
class PendingLink:
    """A provider's identity whose email already has an account, waiting for that account's password."""

    provider: str
    subject: str
    email: str
    email_verified: bool
    name: str
    next: str
    issued_at: float

    @classmethod
    def of(cls, found: ProviderIdentity, next: str) -> PendingLink:
        return cls(
            found.provider.value,
            found.subject,
            found.email,
            found.email_verified,
            found.name,
            next,
            time.time(),
        )

    def seal(self, box: SecretBox) -> str:
        return box.encrypt(json.dumps(asdict(self)))

    @classmethod
    def open(cls, box: SecretBox, sealed: str | None) -> PendingLink:
        if not sealed:
            raise SignInExpired()
        try:
            pending = cls(**json.loads(box.decrypt(sealed)))
        except (ValueError, TypeError):
            raise SignInExpired() from None
        if not 0 <= time.time() - pending.issued_at <= ATTEMPT_SECONDS:
            raise SignInExpired()
        return pending

    @property
    def identity(self) -> ProviderIdentity:
        return ProviderIdentity(
            SsoProvider(self.provider), self.subject, self.email, self.email_verified, self.name
        )


@dataclass(frozen=True)
class SignedIn:
    user: User
    org_id: str | None
    new_account: bool = False


@dataclass(frozen=True)
class NeedsVerification:
    """The account exists but its address is not confirmed: a link is on its way (or was sent recently)."""

    email: str


@dataclass(frozen=True)
class NeedsPassword:
    """The provider's email already has a Hutch account: its password links them, once."""

    pending: PendingLink


SignInOutcome = SignedIn | NeedsVerification | NeedsPassword


@dataclass(frozen=True)
class LinkedIdentity:
    provider: SsoProvider
    label: str
    email: str
    created_at: datetime
    configured: bool


class SsoService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        rate_limiter: RateLimiter,
        secret_box: SecretBox,
        providers: SsoProviders,
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self.settings = settings
        self.rate_limiter = rate_limiter
        self.secret_box = secret_box
        self.providers = providers
        self.identities = SsoIdentityRepository(uow.session)
        self.users = UserRepository(uow.session)
        self.memberships = MembershipRepository(uow.session)

    def _auth(self) -> AuthService:
        return AuthService(self.uow, self.settings, self.rate_limiter, self.secret_box)

    # --- signing in and up ----------------------------------------------------------------------------

    async def spend(self, attempt: SignInAttempt) -> None:
        """An attempt completes once: its state is recorded, and a second callback with it is refused
        (say its cookie is sent again with another code from the same authorization request)."""
        now = datetime.now(UTC)
        expires_at = datetime.fromtimestamp(attempt.issued_at + ATTEMPT_SECONDS + 60, UTC)
        if not await SsoStateRepository(self.session).spend(sha256_hex(attempt.state), expires_at, now):
            raise SignInExpired()

    async def sign_in(self, found: ProviderIdentity, next: str, ip: str | None) -> SignInOutcome:
        """The callback of a sign-in (or sign-up) through a provider."""
        await self.identities.hold_sign_up(found.provider, found.subject, found.email)
        identity = await self.identities.by_subject(found.provider, found.subject)
        if identity is not None:
            user = await self.users.get(identity.user_id)
            if user is None:
                raise NotFound("User")
            identity.email = found.email
            if user.email_verified_at is None and found.email_verified and found.email == user.email:
                user.email_verified_at = datetime.now(UTC)  # the provider vouches for the address now
            return await self._finish(user, found.provider, ip)
        existing = await self.users.by_email(found.email)
        if existing is not None:
            # Never a silent takeover: an address alone does not prove the account is theirs.
            if not self.has_password(existing):
                label = provider_label(self.settings, found.provider)
                raise Conflict(
                    Wording(
                        N_(
                            "An account with {email} already exists and signs in with another provider: "
                            "sign in with it, then link {label} from your account page."
                        ),
                        email=found.email,
                        label=label,
                    )
                )
            return NeedsPassword(PendingLink.of(found, next))
        user, org = await self._auth().create_account(
            NewAccount(
                email=found.email,
                name=found.name or None,
                password_hash=NO_PASSWORD,
                email_verified=found.email_verified,
                via=found.provider.value,
            ),
            ip,
        )
        await self._link(user, found, ip)
        outcome = await self._finish(user, found.provider, ip, verification_sent=True)
        if isinstance(outcome, SignedIn):
            return SignedIn(outcome.user, org.id, new_account=True)
        return outcome

    async def link_with_password(self, pending: PendingLink, password: str, ip: str | None) -> SignInOutcome:
        """Link the waiting identity to the account of its email, proven by that account's password."""
        found = pending.identity
        # The password proves the account; the requirement of the person's orgs is checked after linking,
        # against the provider just linked (linking the required provider is how a member complies).
        user = await self._auth().authenticate(found.email, password, ip, check_required_sso=False)
        await self._link(user, found, ip)
        if user.email_verified_at is None and found.email_verified:
            user.email_verified_at = datetime.now(UTC)
        return await self._finish(user, found.provider, ip)

    async def _finish(
        self, user: User, provider: SsoProvider, ip: str | None, *, verification_sent: bool = False
    ) -> SignInOutcome:
        refuse_suspended_user(user)
        if user.email_verified_at is None:
            if not verification_sent:
                await self._send_verification(user)
            return NeedsVerification(user.email)
        await self._refuse_unless_allowed(user, provider)
        user.last_login_at = datetime.now(UTC)
        await record_audit(
            self.session,
            action="login",
            actor_user_id=user.id,
            target=user.id,
            ip=ip,
            details={"via": provider.value},
        )
        return SignedIn(user, await self.memberships.first_org_id(user.id))

    async def _send_verification(self, user: User) -> None:
        links = EmailLinks(self.uow, self.settings, self.secret_box, self.rate_limiter)
        with suppress(HutchError):  # sent a moment ago (rate limit): the earlier link still works
            await links.send_verification(user)

    async def _refuse_unless_allowed(self, user: User, provider: SsoProvider) -> None:
        if user.is_platform_admin:
            return
        for org, _ in await self.memberships.orgs_of(user.id):
            required = org.required_sso_provider
            if required is not None and required is not provider:
                label = provider_label(self.settings, required)
                raise SsoSignInRefused(
                    Wording(N_("{org} requires signing in with {label}."), org=org.name, label=label)
                )

    # --- linking and unlinking, from the account page -------------------------------------------------

    @staticmethod
    def has_password(user: User) -> bool:
        return user.password_hash != NO_PASSWORD

    async def linked(self, user_id: str) -> list[LinkedIdentity]:
        configured = {g.provider for g in self.providers.configured()}
        return [
            LinkedIdentity(
                i.provider,
                provider_label(self.settings, i.provider),
                i.email,
                i.created_at,
                i.provider in configured,
            )
            for i in await self.identities.of_user(user_id)
        ]

    async def link_signed_in(self, user_id: str, found: ProviderIdentity, ip: str | None) -> None:
        """Link the provider's account to the person who started the link while signed in."""
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("User")
        refuse_suspended_user(user)
        await self._link(user, found, ip)

    async def _link(self, user: User, found: ProviderIdentity, ip: str | None) -> SsoIdentity:
        label = provider_label(self.settings, found.provider)
        existing = await self.identities.by_subject(found.provider, found.subject)
        if existing is not None:
            if existing.user_id == user.id:
                return existing
            raise Conflict(
                Wording(N_("This {label} account is already linked to another account."), label=label)
            )
        if any(i.provider is found.provider for i in await self.identities.of_user(user.id)):
            raise Conflict(
                Wording(
                    N_("Another {label} account is already linked to yours; unlink it first."), label=label
                )
            )
        identity = await self.identities.add(
            SsoIdentity(
                id=new_id("sso"),
                user_id=user.id,
                provider=found.provider,
                subject=found.subject,
                email=found.email,
            )
        )
        await record_audit(
            self.session,
            action="sso_linked",
            actor_user_id=user.id,
            target=user.id,
            ip=ip,
            details={"provider": found.provider.value, "email": found.email},
        )
        return identity

    async def unlink(self, user_id: str, provider: SsoProvider, ip: str | None) -> None:
        """Refused (409) when nothing would be left to sign in with."""
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("User")
        identities = await self.identities.of_user(user_id)
        target = next((i for i in identities if i.provider is provider), None)
        label = provider_label(self.settings, provider)
        if target is None:
            raise NotFound(
                "Linked account", Wording(N_("No {label} account is linked to yours."), label=label)
            )
        remaining = [i.provider for i in identities if i is not target]
        if not await self._can_still_sign_in(user, remaining):
            raise Conflict(
                Wording(
                    N_(
                        'Unlinking {label} would leave you no way to sign in: set a password first ("Forgot '
                        'password" on the sign-in page) or link another provider.'
                    ),
                    label=label,
                )
            )
        await self.identities.delete(target)
        await record_audit(
            self.session,
            action="sso_unlinked",
            actor_user_id=user.id,
            target=user.id,
            ip=ip,
            details={"provider": provider.value},
        )

    async def _can_still_sign_in(self, user: User, providers: list[SsoProvider]) -> bool:
        configured = {g.provider for g in self.providers.configured()}
        if user.is_platform_admin:
            return user.password_hash != NO_PASSWORD or any(p in configured for p in providers)
        required = {
            org.required_sso_provider
            for org, _ in await self.memberships.orgs_of(user.id)
            if org.required_sso_provider is not None
        }
        if not required:
            return user.password_hash != NO_PASSWORD or any(p in configured for p in providers)
        return len(required) == 1 and any(p in configured and p in required for p in providers)

    # --- orgs that require a provider -----------------------------------------------------------------

    async def required_by(self, org_id: str) -> SsoProvider | None:
        org = await OrgRepository(self.session).get(org_id)
        return org.required_sso_provider if org else None

    async def require(
        self, principal: Principal, provider: SsoProvider | None, ip: str | None = None
    ) -> None:
        """Owners choose the provider their members must sign in with (None: passwords work again).

        The owner must have linked it themselves first: otherwise the change would lock them out."""
        if principal.org_role != "owner":
            raise Forbidden(Wording(N_("Only an owner of the organisation can require single sign-on.")))
        org = await OrgRepository(self.session).get(principal.org_id)
        if org is None:
            raise NotFound("Organisation")
        if provider is not None:
            label = provider_label(self.settings, provider)
            if provider not in {g.provider for g in self.providers.configured()}:
                raise Conflict(
                    Wording(N_("{label} sign-in is not configured on this deployment."), label=label)
                )
            mine = {i.provider for i in await self.identities.of_user(principal.user_id or "")}
            if provider not in mine and not principal.is_platform_admin:
                raise Conflict(
                    Wording(
                        N_(
                            "Link {label} to your own account first (your account page): requiring it would "
                            "otherwise lock you out."
                        ),
                        label=label,
                    )
                )
        if org.required_sso_provider is provider:
            return
        org.required_sso_provider = provider
        await record_audit(
            self.session,
            action="sso_required" if provider else "sso_requirement_removed",
            org_id=org.id,
            actor_user_id=principal.user_id,
            target=org.id,
            ip=ip,
            details={"provider": provider.value} if provider else None,
        )
