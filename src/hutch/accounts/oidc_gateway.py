"""OpenID Connect providers, reached through Authlib: discovery, the authorization request (PKCE S256, state
and nonce), the code exchange and the ID token's checks (signature against the provider's JWKS, issuer,
audience, expiry, nonce).

Google goes through the same code as any provider, found from its issuer. One :class:`OidcGateway` per
configured provider lives in :class:`SsoProviders`, built once at start-up from settings; it keeps the
provider's discovery document and keys in memory (keys are fetched again when a token names a new one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from pydantic import SecretStr

from hutch.accounts.models import SsoProvider
from hutch.core.errors import BadRequest, NotFound, ServiceUnavailable
from hutch.i18n import N_, Wording
from hutch.settings import Settings

GOOGLE_ISSUER = "https://accounts.google.com"
SCOPE = "openid email profile"
TIMEOUT_SECONDS = 10.0
CLOCK_LEEWAY_SECONDS = 60


class SsoRefused(BadRequest):
    """The provider's answer did not prove who signed in (a used or expired code, a bad ID token)."""

    def __init__(self, message: str, label: str, **values: str) -> None:
        # ``message``, marked where it is raised, is said whole in the reader's language where it is shown.
        super().__init__(Wording(message, label=label, **values))


class ProviderUnreachable(ServiceUnavailable):
    """The provider could not be reached or answered nonsense."""

    def __init__(self, label: str) -> None:
        super().__init__(
            Wording(N_("{label} could not be reached to sign you in; try again in a minute."), label=label)
        )


@dataclass(frozen=True)
class ProviderConfig:
    provider: SsoProvider
    label: str  # "Google", or HUTCH_OIDC_NAME
    issuer: str
    client_id: str
    client_secret: SecretStr

    def __repr__(self) -> str:  # never the secret, even in a traceback
        return f"ProviderConfig({self.provider.value}, issuer={self.issuer!r})"


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in, from a verified ID token."""

    provider: SsoProvider
    subject: str
    email: str
    email_verified: bool
    name: str


class OidcGateway:
    """One OpenID provider: builds the authorization URL and turns a code into a verified identity."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._metadata: dict[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    @property
    def provider(self) -> SsoProvider:
        return self.config.provider

    @property
    def label(self) -> str:
        return self.config.label

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret.get_secret_value(),
            scope=SCOPE,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=TIMEOUT_SECONDS,
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx2.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
                answer = await http.get(url, headers={"Accept": "application/json"})
                answer.raise_for_status()
                body = answer.json()
        except (httpx2.HTTPError, ValueError):
            raise ProviderUnreachable(self.label) from None
        if not isinstance(body, dict):
            raise ProviderUnreachable(self.label)
        return body

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (``<issuer>/.well-known/openid-configuration``), checked."""
        async with self._lock:
            if self._metadata is None:
                issuer = self.config.issuer.rstrip("/")
                found = await self._get_json(f"{issuer}/.well-known/openid-configuration")
                needed = ("authorization_endpoint", "token_endpoint", "jwks_uri")
                # A document that names another issuer is not this provider's (OpenID Discovery §4.3).
                if str(found.get("issuer", "")).rstrip("/") != issuer or not all(
                    isinstance(found.get(key), str) for key in needed
                ):
                    raise ProviderUnreachable(self.label)
                self._metadata = found
            return self._metadata

    async def _keys(self, *, refresh: bool = False) -> KeySet:
        if self._jwks is None or refresh:
            self._jwks = await self._get_json(str((await self.metadata())["jwks_uri"]))
        try:
            return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]  # a JWKS document
        except (JoseError, ValueError, TypeError, KeyError):
            raise ProviderUnreachable(self.label) from None

    async def authorization_url(self, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        """Where to send the browser: the provider's sign-in page, asking for an authorization code."""
        endpoint = str((await self.metadata())["authorization_endpoint"])
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                endpoint, state=state, code_verifier=code_verifier, nonce=nonce
            )
        return str(url)

    async def identity(
        self, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> ProviderIdentity:
        """Exchange the code (with the PKCE verifier) and verify the ID token it brings."""
        metadata = await self.metadata()
        async with self._client(redirect_uri) as client:
            try:
                token = await client.fetch_token(
                    str(metadata["token_endpoint"]),
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
            except OAuthError:
                # Used already, expired, or not issued to us: the provider says no.
                raise SsoRefused(
                    N_(
                        "Signing in with {label} did not work: the provider did not accept this sign-in "
                        "code. Start again."
                    ),
                    self.label,
                ) from None
            except httpx2.HTTPError:
                raise ProviderUnreachable(self.label) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoRefused(
                N_("Signing in with {label} did not work: the provider sent no ID token. Start again."),
                self.label,
            )
        claims = await self._verified_claims(id_token, nonce, metadata, token.get("access_token"))
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise SsoRefused(
                N_(
                    "Signing in with {label} did not work: the provider did not share an email address. "
                    "Start again."
                ),
                self.label,
            )
        verified = claims.get("email_verified") in (True, "true")  # some providers send a string
        name = claims.get("name")
        return ProviderIdentity(
            provider=self.provider,
            subject=str(claims["sub"]),
            email=email.strip().lower(),
            email_verified=verified,
            name=name.strip()[:200] if isinstance(name, str) else "",
        )

    async def _verified_claims(
        self, id_token: str, nonce: str, metadata: dict[str, Any], access_token: object
    ) -> dict[str, Any]:
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        # Symmetric and unsigned algorithms are never accepted: the keys come from the provider's JWKS.
        registry = JWSRegistry(
            algorithms=[a for a in algorithms if a not in ("none", "HS256", "HS384", "HS512")]
        )
        try:
            try:
                decoded = jwt.decode(id_token, await self._keys(), registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys since we fetched them
                decoded = jwt.decode(id_token, await self._keys(refresh=True), registry=registry)
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": str(metadata["issuer"])},
                    "aud": {"essential": True, "value": self.config.client_id},
                    "sub": {"essential": True},
                },
                {
                    "nonce": nonce,
                    "client_id": self.config.client_id,
                    **({"access_token": access_token} if isinstance(access_token, str) else {}),
                },
            )
            claims.validate(leeway=CLOCK_LEEWAY_SECONDS)
        except (JoseError, ValueError) as exc:
            raise SsoRefused(
                N_(
                    "Signing in with {label} did not work: the ID token failed its checks ({claim}). "
                    "Start again."
                ),
                self.label,
                claim=_claim_of(exc),
            ) from None
        return dict(claims)


def _claim_of(exc: Exception) -> str:
    """The failed check, in a word (``nonce``, ``aud``, ``exp``, the signature), never the token."""
    claim = getattr(exc, "claim", None) or getattr(exc, "error", None) or type(exc).__name__
    return str(claim)[:60]


def provider_label(settings: Settings, provider: SsoProvider) -> str:
    """How people know the provider: "Google", or the operator's ``HUTCH_OIDC_NAME``."""
    if provider is SsoProvider.GOOGLE:
        return "Google"
    return settings.oidc_name.strip() or "single sign-on"


class SsoProviders:
    """The providers this deployment offers, keyed by their route name (``google``, ``oidc``)."""

    def __init__(self, gateways: list[OidcGateway]) -> None:
        self._gateways = {g.provider: g for g in gateways}

    @classmethod
    def from_settings(cls, settings: Settings, *, google_issuer: str = GOOGLE_ISSUER) -> SsoProviders:
        """``google_issuer`` is Google's own; only the tests point it at a local provider."""
        configs: list[ProviderConfig] = []
        if settings.google_client_id and settings.google_client_secret is not None:
            configs.append(
                ProviderConfig(
                    SsoProvider.GOOGLE,
                    provider_label(settings, SsoProvider.GOOGLE),
                    google_issuer,
                    settings.google_client_id,
                    settings.google_client_secret,
                )
            )
        if settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret is not None:
            configs.append(
                ProviderConfig(
                    SsoProvider.OIDC,
                    provider_label(settings, SsoProvider.OIDC),
                    settings.oidc_issuer,
                    settings.oidc_client_id,
                    settings.oidc_client_secret,
                )
            )
        return cls([OidcGateway(config) for config in configs])

    def configured(self) -> list[OidcGateway]:
        return list(self._gateways.values())

    def get(self, name: str | SsoProvider) -> OidcGateway:
        """The configured provider of that name; 404 for an unknown or unconfigured one."""
        try:
            return self._gateways[SsoProvider(name)]
        except (ValueError, KeyError):
            raise NotFound(
                "Sign-in provider", f"No sign-in provider '{name}' is configured on this deployment."
            ) from None

    def label(self, provider: SsoProvider) -> str:
        gateway = self._gateways.get(provider)
        return gateway.label if gateway else provider.value
