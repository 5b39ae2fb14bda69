"""The operator's brand: how it is read and checked at start-up, and where customers meet it outside the
browser (emails in both versions, the platform bot's notices, the API's title, the operator's own pages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.app import create_app
from hutch.channels.jobs import NOTIFY_JOB
from hutch.channels.telegram.platform import platform_secret
from hutch.core.brand import Brand, BrandError, load_brand
from hutch.core.errors import StartupError
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import create_account
from tests.fakes.smtp import SmtpServer
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, webhook_headers

PLATFORM_TOKEN = "555000222:AAE_platform_bot_token_for_brands"
OWNER_CHAT = Sender(id=5_550_777, first_name="Olga", last_name=None, username="olga_o")

BRAND_TOML = """
name = "Acme Assist"
primary_color = "#0A7D5A"
support_email = "help@acme.example"
email_from = "Acme Assist <hello@acme.example>"
legal_entity = "Acme Ltd."
public_url = "https://assist.acme.example"
logo_url = "/brand/logo.svg"
logo_dark_url = "https://cdn.acme.example/logo-dark.svg"
favicon_url = "/brand/favicon.svg"
assets_dir = "assets"
powered_by = false

[landing]
title = "Assistants that know your shop"
file = "landing.md"

[pages.privacy]
title = "How Acme handles your data"
file = "privacy.md"

[pages.about]
title = "About Acme"
file = "about.txt"
"""


def write_brand(folder: Path, toml: str = BRAND_TOML) -> Path:
    """A brand file with its landing text, pages and assets, as an operator would lay them out."""
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="80" height="28"><rect width="80" height="28" '
        'fill="#0a7d5a"/></svg>'
    )
    (folder / "assets" / "favicon.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16"/></svg>'
    )
    (folder / "landing.md").write_text(
        "# Acme's shop assistants\n\nAnswers for your customers, day and night.\n\n"
        '<script>alert("raw HTML stays text")</script>\n'
    )
    (folder / "privacy.md").write_text("# How Acme handles your data\n\nWe keep **little**.\n")
    (folder / "about.txt").write_text("Acme has sold lids since 1999.\n\nAsk us anything.")
    path = folder / "brand.toml"
    path.write_text(toml)
    return path


# --- Reading and checking the brand -------------------------------------------------------------------


def test_without_a_brand_the_product_is_hutch(settings: Settings) -> None:
    plain = settings.model_copy(update={"email_from": None})
    brand = load_brand(plain)
    assert (brand.name, brand.is_custom, brand.powered_by_line) == ("Hutch", False, None)
    assert brand.sender == "Hutch <noreply@hutch.example>"  # the public URL's host
    assert brand.accent == "#2458c6" and brand.primary_color is None


def test_settings_alone_make_a_brand(settings: Settings) -> None:
    brand = load_brand(
        settings.model_copy(
            update={
                "brand_name": "Acme Assist",
                "brand_logo_url": "https://cdn.acme.example/logo.svg",
                "brand_primary_color": "#FFCC00",
                "support_email": "help@acme.example",
                "email_from": None,
            }
        )
    )
    assert brand.name == "Acme Assist" and brand.primary_color == "#ffcc00"
    assert brand.sender == "Acme Assist <noreply@hutch.example>"
    assert brand.powered_by_line == "Powered by Hutch"  # on unless HUTCH_POWERED_BY=false
    assert brand.accent_ink == "#1d2330"  # dark text on a light yellow stays readable


def test_the_brand_file_overrides_the_settings_and_finds_its_files(
    settings: Settings, tmp_path: Path
) -> None:
    path = write_brand(tmp_path)
    brand = load_brand(
        settings.model_copy(
            update={"brand_name": "From settings", "powered_by": True, "brand_file": path, "email_from": None}
        )
    )
    assert brand.name == "Acme Assist" and brand.powered_by is False and brand.powered_by_line is None
    assert brand.sender == "Acme Assist <hello@acme.example>"
    assert brand.landing.file == (tmp_path / "landing.md").resolve()
    assert [(p.slug, p.path) for p in brand.footer_pages] == [
        ("privacy", "/privacy"),
        ("terms", "/terms"),
        ("about", "/pages/about"),
    ]
    assert brand.assets_dir == (tmp_path / "assets").resolve()


@pytest.mark.parametrize(
    ("update", "named"),
    [
        ({"brand_primary_color": "green"}, "HUTCH_BRAND_PRIMARY_COLOR: must be a hex colour"),
        ({"email_from": "hello@acme.example"}, "HUTCH_EMAIL_FROM: must look like Name <address"),
        ({"support_email": "Acme <help@acme.example>"}, "HUTCH_SUPPORT_EMAIL: must be an email address"),
        ({"brand_logo_url": "javascript:alert(1)"}, "HUTCH_BRAND_LOGO_URL: must be an http(s) URL"),
    ],
)
def test_a_bad_setting_is_refused_by_name(settings: Settings, update: dict[str, str], named: str) -> None:
    with pytest.raises(BrandError) as refused:
        load_brand(settings.model_copy(update=update))
    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('primary_color = "#12345"', "primary_color: must be a hex colour"),
        ('colour = "#123456"', "colour: is not a brand setting"),
        ('default_host = "acme.example"', "default_host: is not a brand setting"),
        ('public_url = "acme.example"', "public_url: must be an http(s) URL"),
        ('[pages.faq]\ntitle = "FAQ"\nfile = "missing.md"', "pages.faq.file:"),
        ('[pages."Bad Name"]\ntitle = "x"\nfile = "about.txt"', "pages.Bad Name: a page's name"),
        ('[landing]\nheadline = "x"', "landing.headline: is not a brand setting"),
        ('name = "Acme', "not valid TOML"),
    ],
)
def test_a_bad_brand_file_is_refused_naming_the_key(
    settings: Settings, tmp_path: Path, toml: str, named: str
) -> None:
    path = write_brand(tmp_path, toml)
    with pytest.raises(BrandError) as refused:
        load_brand(settings.model_copy(update={"brand_file": path}))
    assert f"HUTCH_BRAND_FILE ({path})" in str(refused.value) and named in str(refused.value)


def test_a_bad_brand_stops_the_start(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="HUTCH_BRAND_PRIMARY_COLOR"):
        create_app(settings.model_copy(update={"brand_primary_color": "#zzzzzz"}))
    with pytest.raises(StartupError, match="cannot be read"):
        create_app(settings.model_copy(update={"brand_file": tmp_path / "nowhere.toml"}))


# --- Where customers meet it --------------------------------------------------------------------------


@dataclass
class Branded:
    client: AsyncClient
    resources: Resources
    settings: Settings

    @property
    def jobs(self) -> RecordingJobQueue:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return self.resources.jobs


@pytest.fixture
async def branded(
    settings: Settings,
    database: Database,
    database_url: str,
    tmp_path: Path,
    telegram_server: FakeTelegramServer,
) -> AsyncIterator[Branded]:
    telegram_server.reset()
    telegram_server.add_bot(PLATFORM_TOKEN, "acme_assist_bot")
    configured = settings.model_copy(
        update={
            "brand_file": write_brand(tmp_path),
            "telegram_api_base": telegram_server.base_url,
            "telegram_bot_token": SecretStr(PLATFORM_TOKEN),
        }
    )
    resources = build_test_resources(configured, database, database_url)
    try:
        async with asgi_client(create_app(resources=resources)) as client:
            yield Branded(client, resources, configured)
    finally:
        await resources.llm.close()


async def test_every_email_carries_the_brand_in_both_versions(
    branded: Branded, session: AsyncSession, mailbox: SmtpServer
) -> None:
    owner = await create_account(session, branded.settings, email="owner@brand.example")
    sent = await branded.client.post("/api/v1/auth/verify-email/send", headers=owner.headers)
    assert sent.status_code == 202
    branded.jobs.deferred.append(
        ("billing.notify_low_balance", {"org_id": owner.org.id, "credits_cents": 50})
    )
    await branded.jobs.run_pending()
    emails = mailbox.wait_for("owner@brand.example", count=2)
    assert {e.subject for e in emails} >= {"Confirm your email address"}
    for email in emails:
        assert email.message["From"] == "Acme Assist <hello@acme.example>"
        assert email.sender == "hello@acme.example"
        html = email.html
        assert html is not None, email.subject
        for version in (email.body, html):
            assert "Acme Assist" in version and "help@acme.example" in version and "Acme Ltd." in version
            assert "Hutch" not in version, version  # powered_by = false in the brand file
        assert "#0a7d5a" in html and 'src="https://assist.acme.example/brand/logo.svg"' in html
        assert 'href="mailto:help@acme.example"' in html
    verification = next(e for e in emails if e.subject == "Confirm your email address")
    link = verification.link("/verify-email")
    assert f'href="{link}"' in (verification.html or "")  # the same working link in the HTML version
    notice = next(e for e in emails if e is not verification)
    assert "Choose how Acme Assist tells you" in notice.body


async def test_the_platform_bots_notices_are_signed_with_the_brand(
    branded: Branded, session: AsyncSession, telegram_server: FakeTelegramServer
) -> None:
    owner = await create_account(session, branded.settings, email="chat@brand.example")
    made = await branded.client.post(
        "/api/v1/agents", json={"name": "Jarvis", "audience": "personal"}, headers=owner.headers
    )
    assert made.status_code == 201
    started = await branded.client.post(
        "/api/v1/users/me/channel", json={"channel": "telegram"}, headers=owner.headers
    )
    assert started.status_code == 201, started.text
    linked = await branded.client.post(
        "/webhooks/telegram/platform",
        json=text_update(f"/start {started.json()['code']}", sender=OWNER_CHAT),
        headers=webhook_headers(platform_secret(branded.settings)),
    )
    assert linked.status_code == 200
    await branded.jobs.run_pending()
    told = await branded.jobs.execute(
        NOTIFY_JOB,
        {"org_id": owner.org.id, "text": "Your assistant Jarvis is ready."},
        job_id=0,
        attempt=0,
        resources=branded.resources,
    )
    assert told == 1
    last = telegram_server.sent_texts(OWNER_CHAT.id, PLATFORM_TOKEN)[-1]
    assert last == "Acme Assist: Your assistant Jarvis is ready."


async def test_the_api_is_titled_with_the_brand(branded: Branded, app: FastAPI) -> None:
    schema = (await branded.client.get("/openapi.json")).json()
    assert schema["info"]["title"] == "Acme Assist" and "Hutch" not in schema["info"]["description"]
    docs = await branded.client.get("/docs")
    assert "<title>Acme Assist" in docs.text
    assert app.title == "Hutch"  # the default deployment keeps its name


async def test_the_operators_pages_and_landing_text_come_from_files(branded: Branded) -> None:
    landing = await branded.client.get("/")
    assert landing.status_code == 200
    assert (
        "<h1>Acme&#39;s shop assistants</h1>" in landing.text
        or "<h1>Acme's shop assistants</h1>" in landing.text
    )
    assert "<script>alert" not in landing.text and "&lt;script&gt;alert" in landing.text  # raw HTML is off
    assert "<title>Assistants that know your shop · Acme Assist</title>" in landing.text
    assert "Agents with a persona" not in landing.text  # the default text is replaced
    privacy = await branded.client.get("/privacy")
    assert "How Acme handles your data" in privacy.text and "<strong>little</strong>" in privacy.text
    about = await branded.client.get("/pages/about")
    assert about.status_code == 200 and "<p>Acme has sold lids since 1999.</p>" in about.text
    for link in (
        'href="/privacy"',
        'href="/terms"',
        'href="/pages/about"',
        'href="mailto:help@acme.example"',
    ):
        assert link in about.text  # the footer lists every page and the support address
    logo = await branded.client.get("/brand/logo.svg")
    assert logo.status_code == 200 and logo.headers["content-type"].startswith("image/svg")
    for missing in ("/pages/nothing", "/pages/privacy"):  # privacy lives at /privacy only
        gone = await branded.client.get(missing)
        assert gone.status_code == 404 and "help@acme.example" in gone.text  # support named on errors
    csp = landing.headers["content-security-policy"]
    assert "img-src 'self' https://cdn.acme.example" in csp  # the dark logo's host may serve images


def test_a_brand_without_a_name_keeps_hutch_everywhere() -> None:
    assert Brand(primary_color="#0a7d5a").powered_by_line is None  # no credit line under Hutch itself


async def test_the_widgets_config_carries_the_brand(
    branded: Branded, session: AsyncSession, client: AsyncClient
) -> None:
    shop = "https://shop.example"
    owner = await create_account(session, branded.settings, email="widget@brand.example")
    agent = await branded.client.post(
        "/api/v1/agents", json={"name": "Shop helper", "audience": "public"}, headers=owner.headers
    )
    made = await branded.client.post(
        f"/api/v1/agents/{agent.json()['id']}/channels/webchat",
        json={"allowed_origins": [shop]},
        headers=owner.headers,
    )
    assert made.status_code == 201, made.text
    api = f"/api/v1/widget/{made.json()['token']}"
    config = (await branded.client.get(api, headers={"Origin": shop})).json()
    assert config["brand_name"] == "Acme Assist" and config["primary_color"] == "#0a7d5a"
    assert config["accent_ink"] == "#ffffff" and config["powered_by"] is None  # turned off in the file
    plain = (await client.get(api, headers={"Origin": shop})).json()  # the same widget, no brand set
    assert (plain["brand_name"], plain["primary_color"], plain["powered_by"]) == ("Hutch", None, None)


async def test_pages_keep_hutch_without_a_brand_and_credit_it_under_one(
    client: AsyncClient, settings: Settings, database: Database, database_url: str
) -> None:
    plain = (await client.get("/login")).text
    assert '<span class="brand-name">Hutch</span>' in plain and "<title>Log in · Hutch</title>" in plain
    assert "Powered by" not in plain and 'href="/static/favicon.svg"' in plain
    assert "--brand-primary: #2458c6" in plain  # today's colour
    named = settings.model_copy(update={"brand_name": "Acme Assist", "brand_primary_color": "#FFCC00"})
    resources = build_test_resources(named, database, database_url)
    try:
        async with asgi_client(create_app(resources=resources)) as branded_client:
            page = (await branded_client.get("/login")).text
            spanish = (await branded_client.get("/login", headers={"Accept-Language": "es"})).text
    finally:
        await resources.llm.close()
    assert "<title>Log in · Acme Assist</title>" in page and "Powered by Hutch" in page  # on by default
    assert "--brand-primary: #ffcc00" in page and "--accent-ink: #1d2330" in page  # dark text on yellow
    assert "Con la tecnología de Hutch" in spanish and "Powered by" not in spanish  # in the reader's language


def test_the_sender_quotes_a_name_mail_needs_quoted() -> None:
    quoted = Brand(name="Acmé, Inc.", default_host="acme.example")
    assert quoted.sender == '"Acmé, Inc." <noreply@acme.example>'
    assert Brand(email_from="Acmé Shop <hi@acme.example>").sender == "Acmé Shop <hi@acme.example>"
