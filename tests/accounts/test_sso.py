"""Single sign-on against a real OpenID provider (``oidc-provider-mock``) on a free port, over real HTTP:
discovery, the authorization request, the code exchange and the ID token's checks are Hutch's own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, OrgRole, SsoIdentity, SsoProvider, User
from hutch.accounts.oidc_gateway import SsoProviders, SsoRefused
from hutch.app import create_app
from hutch.audit.models import AuditEntry
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from hutch.web.sessions import COOKIE
from tests.conftest import (
    PostgresServer,
    RecordingJobQueue,
    asgi_client,
    build_test_resources,
    live_deployment,
)
from tests.fakes.smtp import SmtpServer

PASSWORD = "a-perfectly-fine-password"
CLIENT_SECRET = "oidc-client-secret-value"
ATTEMPT_COOKIE = "hutch_sso"


def sso_settings(settings: Settings, issuer: str) -> Settings:
    return settings.model_copy(
        update={
            "oidc_issuer": issuer,
            "oidc_client_id": "hutch-oidc",
            "oidc_client_secret": SecretStr(CLIENT_SECRET),
            "oidc_name": "Acme ID",
            "google_client_id": "hutch-google",
            "google_client_secret": SecretStr("google-client-secret-value"),
        }
    )


@pytest.fixture
async def sso_resources(
    settings: Settings, database: Database, database_url: str, issuer: str
) -> AsyncIterator[Resources]:
    configured = sso_settings(settings, issuer)
    built = build_test_resources(configured, database, database_url)
    # Google goes through the same code as any provider; only its issuer is the local one here.
    built.sso = SsoProviders.from_settings(configured, google_issuer=issuer)
    yield built
    await built.llm.close()


@pytest.fixture
def sso_app(sso_resources: Resources) -> FastAPI:
    return create_app(resources=sso_resources)


@pytest.fixture
async def browser(sso_app: FastAPI) -> AsyncIterator[AsyncClient]:
    """One browser: it keeps its cookies between requests."""
    async with asgi_client(sso_app) as client:
        yield client


@pytest.fixture
def sso_jobs(sso_resources: Resources) -> RecordingJobQueue:
    assert isinstance(sso_resources.jobs, RecordingJobQueue)
    return sso_resources.jobs


def person(issuer: str, email: str, *, verified: bool = True, name: str = "Pat Doe") -> str:
    """A person at the provider, with these claims; their subject is new for every test."""
    subject = f"sub-{uuid.uuid4().hex[:12]}"
    claims = {"email": email, "email_verified": verified, "name": name}
    answer = httpx.put(f"{issuer}/users/{subject}", json=claims)
    assert answer.status_code == 204, answer.text
    return subject


@dataclass
class Started:
    authorize_url: str
    state: str
    cookie: str


async def start(browser: AsyncClient, provider: str = "oidc") -> Started:
    answer = await browser.get(f"/auth/oidc/{provider}/login")
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    return Started(location, parse_qs(urlsplit(location).query)["state"][0], browser.cookies[ATTEMPT_COOKIE])


def authorize(started: Started, subject: str) -> str:
    """The person signs in at the provider, which sends the browser back: the callback's path and query."""
    answer = httpx.post(started.authorize_url, data={"sub": subject})
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    assert back.netloc == "hutch.example"  # the redirect URI registered: HUTCH_PUBLIC_URL + the callback
    return f"{back.path}?{back.query}"


async def sign_in(browser: AsyncClient, subject: str, provider: str = "oidc") -> httpx.Response:
    started = await start(browser, provider)
    return await browser.get(authorize(started, subject))


async def users_named(session: AsyncSession, email: str) -> list[User]:
    return list((await session.scalars(select(User).where(User.email == email))).all())


async def identities_of(session: AsyncSession, user_id: str) -> list[SsoIdentity]:
    return list((await session.scalars(select(SsoIdentity).where(SsoIdentity.user_id == user_id))).all())


async def password_signup(browser: AsyncClient, email: str) -> dict[str, str]:
    answer = await browser.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def web_login(browser: AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    await browser.get("/login")
    csrf = browser.cookies["hutch_csrf"]
    return await browser.post("/login", data={"csrf": csrf, "email": email, "password": password})


async def verify(session: AsyncSession, email: str) -> None:
    for user in await users_named(session, email):
        user.email_verified_at = func.now()
    await session.flush()


# --- the pages and routes ------------------------------------------------------------------------------


async def test_buttons_show_only_the_configured_providers(browser: AsyncClient, client: AsyncClient) -> None:
    for path in ("/login", "/signup"):
        page = (await browser.get(path)).text
        assert "Sign in with Google" in page and "Sign in with Acme ID" in page
        assert 'href="/auth/oidc/oidc/login"' in page
        bare = (await client.get(path)).text  # a deployment without single sign-on
        assert "Sign in with" not in bare
    unknown = await browser.get("/auth/oidc/github/login")
    assert unknown.status_code == 404 and "No sign-in provider &#39;github&#39; is configured" in unknown.text
    unconfigured = await client.get("/auth/oidc/google/login")
    assert unconfigured.status_code == 404 and "is configured" in unconfigured.text


async def test_sign_up_through_the_provider_then_sign_in_again(
    browser: AsyncClient, session: AsyncSession, issuer: str
) -> None:
    subject = person(issuer, "sam@example.com", name="Sam Okafor")
    started = await start(browser)
    query = parse_qs(urlsplit(started.authorize_url).query)
    assert started.authorize_url.startswith(f"{issuer}/oauth2/authorize?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["nonce"][0] and query["scope"] == ["openid email profile"]
    assert query["redirect_uri"] == ["https://hutch.example/auth/oidc/oidc/callback"]
    assert CLIENT_SECRET not in started.authorize_url + started.cookie

    done = await browser.get(authorize(started, subject))
    assert done.status_code == 303 and done.headers["location"] == "/app/onboarding"
    assert COOKIE in browser.cookies and ATTEMPT_COOKIE not in browser.cookies
    assert (await browser.get("/app/account")).status_code == 200

    [user] = await users_named(session, "sam@example.com")
    assert user.name == "Sam Okafor" and user.email_verified_at is not None  # the provider vouched for it
    [(org, membership)] = (
        await session.execute(
            select(Org, Membership)
            .join(Membership, Membership.org_id == Org.id)
            .where(Membership.user_id == user.id)
        )
    ).all()
    assert membership.role is OrgRole.OWNER and org.name == "Sam Okafor's org"
    [identity] = await identities_of(session, user.id)
    assert (identity.provider, identity.subject, identity.email) == (
        SsoProvider.OIDC,
        subject,
        "sam@example.com",
    )
    signup = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "signup"))).one()
    assert signup.details == {"via": "oidc"}

    browser.cookies.clear()
    again = await sign_in(browser, subject)
    assert again.status_code == 303 and again.headers["location"] == "/app"
    assert COOKIE in browser.cookies
    assert [u.id for u in await users_named(session, "sam@example.com")] == [user.id]
    assert len(await identities_of(session, user.id)) == 1


async def test_google_goes_through_the_same_checks(
    browser: AsyncClient, session: AsyncSession, issuer: str
) -> None:
    subject = person(issuer, "gina@example.com")
    done = await sign_in(browser, subject, provider="google")
    assert done.status_code == 303 and COOKIE in browser.cookies
    [user] = await users_named(session, "gina@example.com")
    [identity] = await identities_of(session, user.id)
    assert identity.provider is SsoProvider.GOOGLE

    # The same address at the other provider: no password to link with, so no way but the account page.
    browser.cookies.clear()
    other = await sign_in(browser, person(issuer, "gina@example.com"))
    assert other.status_code == 409 and "link Acme ID from your account page" in other.text
    assert COOKIE not in browser.cookies and len(await identities_of(session, user.id)) == 1


async def test_the_identity_not_the_email_finds_the_account(
    browser: AsyncClient, session: AsyncSession, issuer: str
) -> None:
    subject = person(issuer, "first@example.com")
    assert (await sign_in(browser, subject)).status_code == 303
    [user] = await users_named(session, "first@example.com")
    # The provider now says another address for the same subject: still the same account.
    httpx.put(f"{issuer}/users/{subject}", json={"email": "renamed@example.com", "email_verified": True})
    browser.cookies.clear()
    assert (await sign_in(browser, subject)).status_code == 303
    assert await users_named(session, "renamed@example.com") == []
    [identity] = await identities_of(session, user.id)
    assert identity.email == "renamed@example.com"


# --- what is refused -------------------------------------------------------------------------------------


async def test_a_forged_state_or_another_browser_is_refused_without_a_session(
    browser: AsyncClient, sso_app: FastAPI, session: AsyncSession, issuer: str
) -> None:
    subject = person(issuer, "forged@example.com")
    callback = authorize(await start(browser), subject)
    forged = callback.replace("state=", "state=x")
    refused = await browser.get(forged)
    assert refused.status_code == 400 and "did not start in this browser" in refused.text
    assert COOKIE not in browser.cookies

    # The real callback, opened in a browser that never started this sign-in.
    callback = authorize(await start(browser), subject)
    async with asgi_client(sso_app) as stranger:
        elsewhere = await stranger.get(callback)
        assert elsewhere.status_code == 400 and COOKIE not in stranger.cookies
    assert await users_named(session, "forged@example.com") == []


async def test_a_replayed_code_is_refused(browser: AsyncClient, session: AsyncSession, issuer: str) -> None:
    subject = person(issuer, "replay@example.com")
    started = await start(browser)
    callback = authorize(started, subject)
    assert (await browser.get(callback)).status_code == 303
    [jar_domain] = {c.domain for c in browser.cookies.jar if c.name == COOKIE}
    browser.cookies.clear()
    browser.cookies.set(ATTEMPT_COOKIE, started.cookie, domain=jar_domain, path="/auth/oidc")
    replayed = await browser.get(callback)  # same code, same state, same attempt cookie
    assert replayed.status_code == 400 and "did not accept this sign-in code" in replayed.text
    assert COOKIE not in browser.cookies


async def test_an_attempt_signs_in_once_even_with_a_second_code(
    browser: AsyncClient, session: AsyncSession, issuer: str
) -> None:
    subject = person(issuer, "twice@example.com")
    started = await start(browser)
    first, second = authorize(started, subject), authorize(started, subject)  # two codes, one attempt
    assert first != second
    assert (await browser.get(first)).status_code == 303
    [jar_domain] = {c.domain for c in browser.cookies.jar if c.name == COOKIE}
    browser.cookies.clear()
    browser.cookies.set(ATTEMPT_COOKIE, started.cookie, domain=jar_domain, path="/auth/oidc")
    again = await browser.get(second)
    assert again.status_code == 400 and "already used" in again.text
    assert COOKIE not in browser.cookies


async def test_an_id_token_for_another_nonce_is_refused(
    browser: AsyncClient, sso_app: FastAPI, session: AsyncSession, issuer: str
) -> None:
    subject = person(issuer, "nonce@example.com")
    theirs = await start(browser)
    code = parse_qs(urlsplit(authorize(theirs, subject)).query)["code"][0]
    async with asgi_client(sso_app) as victim:
        mine = await start(victim)  # its own state and nonce, in its own cookie
        answer = await victim.get(f"/auth/oidc/oidc/callback?code={code}&state={mine.state}")
        assert answer.status_code == 400 and "ID token failed its checks (nonce)" in answer.text
        assert COOKIE not in victim.cookies
    assert await users_named(session, "nonce@example.com") == []


async def test_an_unverified_email_is_not_usable_until_hutch_verifies_it(
    browser: AsyncClient, session: AsyncSession, issuer: str, sso_jobs: RecordingJobQueue, mailbox: SmtpServer
) -> None:
    subject = person(issuer, "unsure@example.com", verified=False)
    first = await sign_in(browser, subject)
    assert first.status_code == 200 and "Confirm your email address" in first.text
    assert COOKIE not in browser.cookies
    [user] = await users_named(session, "unsure@example.com")
    assert user.email_verified_at is None and len(await identities_of(session, user.id)) == 1

    again = await sign_in(browser, subject)  # not before the link is opened; a new link is sent
    assert again.status_code == 200 and COOKIE not in browser.cookies
    await sso_jobs.run_pending()
    _, latest = mailbox.wait_for("unsure@example.com", count=2)
    assert latest.subject == "Confirm your email address"

    assert (await browser.get(f"/verify-email?token={latest.token()}")).status_code == 200
    done = await sign_in(browser, subject)
    assert done.status_code == 303 and COOKIE in browser.cookies


async def test_an_email_with_a_password_account_is_not_taken_over(
    browser: AsyncClient, session: AsyncSession, issuer: str
) -> None:
    await password_signup(browser, "owner@example.com")
    [owner] = await users_named(session, "owner@example.com")
    subject = person(issuer, "owner@example.com", verified=True)

    asked = await sign_in(browser, subject)
    assert (
        asked.status_code == 200
        and "An account with <strong>owner@example.com</strong> already exists" in asked.text
    )
    assert COOKIE not in browser.cookies and await identities_of(session, owner.id) == []
    assert len(await users_named(session, "owner@example.com")) == 1

    csrf = browser.cookies["hutch_csrf"]
    wrong = await browser.post("/auth/oidc/link", data={"csrf": csrf, "password": "not-the-password"})
    assert wrong.status_code == 401 and COOKIE not in browser.cookies
    assert await identities_of(session, owner.id) == []

    linked = await browser.post("/auth/oidc/link", data={"csrf": csrf, "password": PASSWORD})
    assert linked.status_code == 303 and COOKIE in browser.cookies
    [identity] = await identities_of(session, owner.id)
    assert identity.subject == subject
    assert (await session.scalars(select(AuditEntry).where(AuditEntry.action == "sso_linked"))).one()

    browser.cookies.clear()
    assert (await sign_in(browser, subject)).status_code == 303 and COOKIE in browser.cookies


# --- the account page: link and unlink ---------------------------------------------------------------


async def test_link_and_unlink_a_provider_from_the_account_page(
    browser: AsyncClient, session: AsyncSession, issuer: str
) -> None:
    await password_signup(browser, "linker@example.com")
    await verify(session, "linker@example.com")
    [user] = await users_named(session, "linker@example.com")
    assert (await web_login(browser, "linker@example.com")).status_code == 303
    account = (await browser.get("/app/account")).text
    assert "Sign-in methods" in account and "Link Acme ID" in account

    csrf_less = await browser.get("/app/account/sso/oidc/link")
    assert csrf_less.status_code == 403
    link_path = account.split('href="/app/account/sso/oidc/link?csrf=')[1].split('"')[0]
    to_provider = await browser.get(f"/app/account/sso/oidc/link?csrf={link_path}")
    assert to_provider.status_code == 303
    started = Started(to_provider.headers["location"], "", browser.cookies[ATTEMPT_COOKIE])
    subject = person(issuer, "linker.work@example.com")  # another address at the provider is fine
    back = await browser.get(authorize(started, subject))
    assert back.status_code == 303 and back.headers["location"].startswith("/app/account?done=")
    [identity] = await identities_of(session, user.id)
    assert identity.subject == subject
    shown = (await browser.get(back.headers["location"])).text
    assert "Acme ID is linked to your account." in shown and "Acme ID (linker.work@example.com)" in shown

    web_csrf = (await browser.get("/app/account")).text.split('name="csrf" value="')[1].split('"')[0]
    unlinked = await browser.post("/app/account/sso/oidc/unlink", data={"csrf": web_csrf})
    assert unlinked.status_code == 303 and await identities_of(session, user.id) == []
    actions = set((await session.scalars(select(AuditEntry.action))).all())
    assert {"sso_linked", "sso_unlinked"} <= actions


async def test_unlinking_the_only_way_in_is_refused(
    browser: AsyncClient, session: AsyncSession, issuer: str
) -> None:
    assert (await sign_in(browser, person(issuer, "only@example.com"))).status_code == 303
    [user] = await users_named(session, "only@example.com")
    page = (await browser.get("/app/account")).text
    assert "Your account has no password" in page
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    refused = await browser.post("/app/account/sso/oidc/unlink", data={"csrf": csrf})
    assert refused.status_code == 409 and "no way to sign in" in refused.text
    assert len(await identities_of(session, user.id)) == 1


# --- an org that requires single sign-on --------------------------------------------------------------


async def test_an_org_that_requires_sso_refuses_its_members_passwords(
    browser: AsyncClient, sso_app: FastAPI, session: AsyncSession, issuer: str
) -> None:
    admin = await password_signup(browser, "platform@example.com")  # the first account: a platform admin
    owner = await password_signup(browser, "boss@example.com")
    [boss] = await users_named(session, "boss@example.com")

    # Requiring a provider the owner has not linked would lock them out: refused.
    unlinked = await browser.patch("/api/v1/org", json={"required_sso_provider": "oidc"}, headers=owner)
    assert (
        unlinked.status_code == 409 and "Link Acme ID to your own account first" in unlinked.json()["detail"]
    )
    boss_subject = person(issuer, "boss@example.com")
    assert (await sign_in(browser, boss_subject)).status_code == 200  # asks for the password to link
    csrf = browser.cookies["hutch_csrf"]
    assert (
        await browser.post("/auth/oidc/link", data={"csrf": csrf, "password": PASSWORD})
    ).status_code == 303

    # A member joins, a platform admin is an admin of the org; an API key is made before the rule.
    org_id = (await browser.get("/api/v1/org", headers=owner)).json()["id"]
    await password_signup(browser, "member@example.com")
    [member] = await users_named(session, "member@example.com")
    [platform] = await users_named(session, "platform@example.com")
    session.add(Membership(org_id=org_id, user_id=member.id, role=OrgRole.MEMBER))
    session.add(Membership(org_id=org_id, user_id=platform.id, role=OrgRole.ADMIN))
    await session.flush()
    key = await browser.post("/api/v1/api-keys", json={"label": "ci"}, headers=owner)
    assert key.status_code == 201, key.text

    required = await browser.patch("/api/v1/org", json={"required_sso_provider": "oidc"}, headers=owner)
    assert required.status_code == 200 and required.json()["required_sso_provider"] == "oidc"
    assert (await browser.get("/api/v1/org", headers=owner)).json()["required_sso_provider"] == "oidc"
    team = (await browser.get("/app/team")).text  # the owner's dashboard session, from linking above
    assert "Members sign in with <strong>Acme ID</strong> only" in team and 'name="provider"' in team
    in_org = {**admin, "X-Org-Id": org_id}
    not_owner = await browser.patch("/api/v1/org", json={"required_sso_provider": None}, headers=in_org)
    assert not_owner.status_code == 403 and "Only an owner" in not_owner.json()["detail"]

    browser.cookies.clear()
    refused = await web_login(browser, "member@example.com")
    assert refused.status_code == 403 and "requires signing in with Acme ID" in refused.text
    assert "Sign in with Acme ID" in refused.text and COOKIE not in browser.cookies
    api = await browser.post("/api/v1/auth/login", json={"email": "member@example.com", "password": PASSWORD})
    assert api.status_code == 403
    assert (await web_login(browser, "platform@example.com")).status_code == 303  # admins keep a way in
    api_key = {"Authorization": f"Bearer {key.json()['key']}"}
    assert (await browser.get("/api/v1/org", headers=api_key)).status_code == 200  # keys are unaffected

    # Through the required provider the member is in (linking needs their password once) ...
    browser.cookies.clear()
    asked = await sign_in(browser, person(issuer, "member@example.com"))
    assert asked.status_code == 200
    csrf = browser.cookies["hutch_csrf"]
    linked = await browser.post("/auth/oidc/link", data={"csrf": csrf, "password": PASSWORD})
    assert linked.status_code == 303 and COOKIE in browser.cookies
    # ... but not through another provider.
    browser.cookies.clear()
    assert (
        await sign_in(browser, person(issuer, "member@example.com"), provider="google")
    ).status_code == 200
    csrf = browser.cookies["hutch_csrf"]
    other = await browser.post("/auth/oidc/link", data={"csrf": csrf, "password": PASSWORD})
    assert other.status_code == 403 and "requires signing in with Acme ID" in other.text
    assert COOKIE not in browser.cookies
    assert [i.provider for i in await identities_of(session, member.id)] == [SsoProvider.OIDC]

    # The owner lifts it: passwords work again.
    lifted = await browser.patch("/api/v1/org", json={"required_sso_provider": None}, headers=owner)
    assert lifted.status_code == 200 and lifted.json()["required_sso_provider"] is None
    browser.cookies.clear()
    assert (await web_login(browser, "member@example.com")).status_code == 303
    actions = (await session.scalars(select(AuditEntry.action))).all()
    assert {"sso_required", "sso_requirement_removed", "login_refused_sso_required"} <= set(actions)
    assert [i.provider for i in await identities_of(session, boss.id)] == [SsoProvider.OIDC]


# --- the ID token's signature ------------------------------------------------------------------------------


async def test_an_id_token_not_signed_by_the_providers_keys_is_refused(
    settings: Settings, issuer: str
) -> None:
    """Tokens with the right claims, signed with another key (under the provider's key id) or with the
    client secret (HS256), never pass: only the provider's published keys count."""
    gateway = SsoProviders.from_settings(sso_settings(settings, issuer)).get("oidc")
    metadata = await gateway.metadata()
    [published] = httpx.get(metadata["jwks_uri"]).json()["keys"]
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": "hutch-oidc",
        "sub": "someone",
        "iat": now,
        "exp": now + 300,
        "nonce": "n1",
    }
    forged = jwt.encode({"alg": "RS256", "kid": published["kid"]}, claims, RSAKey.generate_key(2048))
    with pytest.raises(SsoRefused, match="ID token failed its checks"):
        await gateway._verified_claims(forged, "n1", metadata, None)
    shared = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(CLIENT_SECRET.encode() * 2))
    with pytest.raises(SsoRefused, match="ID token failed its checks"):
        await gateway._verified_claims(shared, "n1", metadata, None)


async def test_two_first_sign_ins_at_once_make_one_account(
    postgres: PostgresServer, migrated_template: str, settings: Settings, issuer: str
) -> None:
    """Two tabs finishing a first sign-in together, on a database where each request really commits: one
    account, both signed in, no error."""
    configured = sso_settings(settings, issuer)
    async with live_deployment(postgres, migrated_template, configured) as live:
        live.resources.sso = SsoProviders.from_settings(configured, google_issuer=issuer)
        subject = person(issuer, "twins@example.com")
        async with asgi_client(live.app) as first, asgi_client(live.app) as second:
            callbacks = [authorize(await start(tab), subject) for tab in (first, second)]
            answers = await asyncio.gather(first.get(callbacks[0]), second.get(callbacks[1]))
        assert [a.status_code for a in answers] == [303, 303], [a.text for a in answers]
        [user] = await users_named(live.session, "twins@example.com")
        assert len(await identities_of(live.session, user.id)) == 1


# --- in the reader's language ----------------------------------------------------------------------------


async def test_a_spanish_reader_is_told_in_spanish_and_the_api_stays_english(
    browser: AsyncClient, session: AsyncSession, issuer: str
) -> None:
    browser.headers["Accept-Language"] = "es-ES,es;q=0.9"
    subject = person(issuer, "lola@example.com", verified=False)
    forged = (authorize(await start(browser), subject)).replace("state=", "state=x")
    refused = await browser.get(forged)
    assert refused.status_code == 400 and 'lang="es"' in refused.text
    assert "Sesión no iniciada" in refused.text and "no empezó en este navegador" in refused.text
    assert "did not start" not in refused.text

    unverified = await sign_in(browser, subject)
    assert unverified.status_code == 200 and "Confirma tu dirección de correo" in unverified.text
    assert "Hemos enviado un enlace a lola@example.com" in unverified.text

    # A password account refused on the sign-in page, in Spanish; the API's detail for developers in English.
    owner = await password_signup(browser, "pepe@example.com")
    wrong = await web_login(browser, "pepe@example.com", "not-the-password")
    assert wrong.status_code == 401 and "Correo o contraseña incorrectos." in wrong.text
    unlinked = await browser.patch("/api/v1/org", json={"required_sso_provider": "oidc"}, headers=owner)
    assert unlinked.status_code == 409 and unlinked.json()["detail"].startswith("Link Acme ID to your own")

    # A refusal on a dashboard page: unlinking the only way in.
    assert (await sign_in(browser, person(issuer, "solo@example.com"))).status_code == 303
    page = (await browser.get("/app/account")).text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    kept = await browser.post("/app/account/sso/oidc/unlink", data={"csrf": csrf})
    assert kept.status_code == 409 and "no te quedará ninguna forma de iniciar sesión" in kept.text
