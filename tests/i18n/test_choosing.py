"""Which language a person, a browser and an org get: the profile's choice, Accept-Language, the default;
refused choices change nothing; an operator's own catalogue adds a language."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org, User
from hutch.app import create_app
from hutch.db.engine import Database
from hutch.i18n.negotiation import accepted, negotiate
from hutch.settings import Settings
from tests.conftest import asgi_client, build_test_resources
from tests.factories import create_account
from tests.web.test_dashboard import csrf_of, log_in

FRENCH_PO = """msgid ""
msgstr ""
"Language: fr\\n"
"Content-Type: text/plain; charset=utf-8\\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\\n"

msgid "Log in"
msgstr "Se connecter"
"""


def test_accept_language_is_read_in_order_of_preference() -> None:
    assert accepted("fr-CH, fr;q=0.9, es;q=0.95, de;q=0, *;q=0.5") == ["fr-CH", "es", "fr"]
    assert accepted("") == [] and accepted("es;q=oops") == []
    assert negotiate(None, "fr-CH, es-MX;q=0.8", "en") == "es"  # no French: the first one Hutch speaks
    assert negotiate("en", "es", "en") == "en"  # a person's choice wins over the browser
    assert negotiate(None, "de, ja", "es") == "es"  # none spoken: the default
    assert negotiate(None, None, "xx") == "en"  # an unknown default: English


async def test_a_person_chooses_their_language_and_an_unknown_one_changes_nothing(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    me = "/api/v1/users/me"
    chosen = await client.patch(me, json={"language": "es-ES"}, headers=owner.headers)
    assert chosen.status_code == 200 and chosen.json()["language"] == "es"
    for wrong in ("xx", "klingon-language", "<b>"):
        refused = await client.patch(me, json={"language": wrong, "name": "Renamed"}, headers=owner.headers)
        assert refused.status_code == 422, refused.text
    after = (await client.get(me, headers=owner.headers)).json()
    assert after["language"] == "es" and after["name"] != "Renamed"
    back = await client.patch(me, json={"language": None}, headers=owner.headers)
    assert back.status_code == 200 and back.json()["language"] is None
    user = await session.get(User, owner.user.id, populate_existing=True)
    assert user is not None and user.language is None


async def test_an_org_chooses_its_bots_language_and_whether_end_users_own_is_used(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    set_it = await client.patch(
        "/api/v1/org", json={"language": "es", "use_end_user_language": True}, headers=owner.headers
    )
    assert set_it.status_code == 200, set_it.text
    assert set_it.json()["language"] == "es" and set_it.json()["use_end_user_language"] is True
    refused = await client.patch(
        "/api/v1/org", json={"name": "Other", "language": "xx"}, headers=owner.headers
    )
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "language"]
    org = await session.get(Org, owner.org.id, populate_existing=True)
    assert org is not None and org.name != "Other" and org.language == "es"


async def test_pages_follow_the_browser_then_the_profile(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    spanish = await client.get("/login", headers={"Accept-Language": "es-AR,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in spanish.text and "Iniciar sesión" in spanish.text
    unknown = await client.get("/login", headers={"Accept-Language": "ja"})
    assert '<html lang="en">' in unknown.text and "Log in" in unknown.text

    owner = await create_account(session, settings)
    await client.patch("/api/v1/users/me", json={"language": "es"}, headers=owner.headers)
    await log_in(client, owner.user.email)
    dashboard = await client.get("/app/agents", headers={"Accept-Language": "en"})
    assert '<html lang="es">' in dashboard.text and "Agentes" in dashboard.text


async def test_an_operator_adds_a_language_with_a_po_file(
    tmp_path: Path, settings: Settings, database: Database, database_url: str, session: AsyncSession
) -> None:
    (tmp_path / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "fr" / "LC_MESSAGES" / "messages.po").write_text(FRENCH_PO, encoding="utf-8")
    configured = settings.model_copy(update={"locales_dir": tmp_path})
    async with asgi_client(
        create_app(resources=build_test_resources(configured, database, database_url))
    ) as c:
        page = await c.get("/login", headers={"Accept-Language": "fr"})
        assert '<html lang="fr">' in page.text and "Se connecter" in page.text
        owner = await create_account(session, configured)
        chosen = await c.patch("/api/v1/users/me", json={"language": "fr"}, headers=owner.headers)
        assert chosen.status_code == 200 and chosen.json()["language"] == "fr"


async def test_form_errors_are_in_the_browsers_language(client: AsyncClient) -> None:
    spanish = {"Accept-Language": "es"}
    form = await client.get("/signup", headers=spanish)
    sent = {"csrf": csrf_of(form), "email": "corto@example.com", "password": "corta", "org_name": "Acme"}
    refused = await client.post("/signup", data=sent, headers=spanish)
    assert refused.status_code == 422
    assert "Demasiado corto: al menos 8 caracteres." in refused.text and '<html lang="es">' in refused.text


async def test_the_usage_charts_are_drawn_in_each_readers_language(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    await log_in(client, owner.user.email)

    def charts(page: str) -> list[tuple[str, str]]:
        """Each chart's text alternative and its drawing (the SVG: title and legend)."""
        found = re.findall(r'<img class="chart" src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]*)"', page)
        return [(html.unescape(alt), base64.b64decode(svg).decode()) for svg, alt in found]

    english = charts((await client.get("/app/usage")).text)
    assert english[1][0] == "0 messages over the last 30 days" and ">Input<" in english[2][1]
    # The same org's charts a moment later, for a Spanish reader: drawn again in Spanish, not the kept ones.
    spanish = charts((await client.get("/app/usage", headers={"Accept-Language": "es"})).text)
    assert [alt for alt, _svg in spanish] == [
        "Mensajes por canal: ninguna",
        "0 mensajes en los últimos 30 días",
        "0 tokens en los últimos 30 días",
        "0 minutos de voz en los últimos 30 días",
        "En los últimos 30 días: 0 llamadas a herramientas y 0,0 minutos de notas de voz transcritos",
    ]
    assert ">Entrada<" in spanish[2][1] and ">Salida<" in spanish[2][1] and "Input" not in spanish[2][1]
    assert ">Notas de voz (min)<" in spanish[4][1]
