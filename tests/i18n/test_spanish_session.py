"""A Spanish session in a real browser: a Spanish browser gets Spanish pages before signing in and after
signing up; a person who chose Spanish gets the dashboard in Spanish from an English browser, and switches
back on their account page; the usage charts and a task's page, its live view's script included, are in
Spanish too. One Hutch and one Chromium for the whole module."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from hutch.db.urls import libpq_conninfo
from hutch.settings import Settings
from tests.conftest import PostgresServer
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.live_server import ServedInThread, serve_in_thread

PASSWORD = "una-contraseña-larga"


@pytest.fixture(scope="module")
def served(postgres: PostgresServer, migrated_template: str, settings: Settings) -> Iterator[ServedInThread]:
    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Debian's Chromium: apt-get install chromium")
    with serve_in_thread(postgres, migrated_template, settings, "hutch_spanish") as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def html_lang(page: Page) -> str | None:
    return page.locator("html").get_attribute("lang")


def signed_up_in_spanish(base: str, email: str) -> dict[str, str]:
    signed_up = httpx.post(f"{base}/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert signed_up.status_code == 201, signed_up.text
    owner = {"Authorization": f"Bearer {signed_up.json()['access_token']}"}
    assert httpx.patch(f"{base}/api/v1/users/me", json={"language": "es"}, headers=owner).status_code == 200
    return owner


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/app"))


def test_a_spanish_browser_signs_up_in_spanish(browser: Browser, served: ServedInThread) -> None:
    context = browser.new_context(locale="es-ES")
    page = context.new_page()
    page.goto(f"{served.base_url}/login")
    assert html_lang(page) == "es"
    expect(page.get_by_role("heading", level=1)).to_have_text("Iniciar sesión")
    page.get_by_role("link", name="Registrarse").click()
    page.get_by_label("Correo").fill("lucia@example.com")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_label("Empresa").fill("Tapas y Cía")
    page.get_by_role("button", name="Registrarse").click()
    page.wait_for_url(re.compile(r"/app/onboarding"))
    assert html_lang(page) == "es"
    expect(page.get_by_role("heading", level=1)).to_have_text("¡Hola! Vamos a preparar tu primer asistente")
    expect(page.get_by_role("button", name="Crear mi asistente")).to_be_visible()
    context.close()


def test_a_person_who_chose_spanish_sees_the_dashboard_in_spanish_and_switches_back(
    browser: Browser, served: ServedInThread
) -> None:
    base = served.base_url
    owner = signed_up_in_spanish(base, "marta@example.com")

    context = browser.new_context(locale="en-US")  # the browser asks for English; her choice wins
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{base}/login")
    assert html_lang(page) == "en"
    log_in(page, base, "marta@example.com")
    page.goto(f"{base}/app/agents")
    assert html_lang(page) == "es"
    expect(page.get_by_role("heading", level=1)).to_have_text("Agentes")
    expect(
        page.get_by_role("navigation", name="Panel").get_by_role("link", name="Bandeja de entrada")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible()
    # The dashboard's scripts get their words in Spanish too, without breaking the page's security policy.
    assert "Copiado" in (page.locator("#hutch-texts").text_content() or "")
    assert errors == []

    page.goto(f"{base}/app/account")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tu cuenta")
    page.get_by_label("El panel y tus correos están en").select_option("en")
    page.get_by_role("button", name="Guardar").click()
    page.wait_for_url(re.compile(r"/app/account"))
    assert html_lang(page) == "en"
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    me = httpx.get(f"{base}/api/v1/users/me", headers=owner).json()
    assert me["language"] == "en"
    context.close()


def test_the_usage_charts_and_a_live_task_page_are_in_spanish(
    browser: Browser, served: ServedInThread
) -> None:
    base = served.base_url
    owner = signed_up_in_spanish(base, "ines@example.com")
    agent = httpx.post(
        f"{base}/api/v1/agents",
        json={"name": "Rita", "model": "demo/echo", "audience": "public"},
        headers=owner,
    ).json()
    task = httpx.post(
        f"{base}/api/v1/agents/{agent['id']}/tasks",
        json={"description": "Rellenar el formulario"},
        headers=owner,
    ).json()

    context = browser.new_context(locale="en-US")
    page = context.new_page()
    log_in(page, base, "ines@example.com")
    page.goto(f"{base}/app/usage")
    expect(page.get_by_role("heading", level=1)).to_have_text("Uso")
    alts = [page.locator("img.chart").nth(i).get_attribute("alt") for i in range(3)]
    assert alts == [
        "Mensajes por canal: ninguna",
        "0 mensajes en los últimos 30 días",
        "0 tokens en los últimos 30 días",
    ]

    page.goto(f"{base}/app/tasks/{task['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tarea de Rita")
    expect(page.get_by_role("heading", name="Pasos")).to_be_visible()
    live = page.locator("#live-state")
    expect(live).to_have_text("Esperando la primera pantalla…")
    # The task's browser shows a page, then the task is canceled: the live view's script says both in Spanish.
    with psycopg.connect(libpq_conninfo(served.database_url), autocommit=True) as db:
        db.execute(
            "INSERT INTO browser_screenshots (id, org_id, agent_id, task_id, step, action, page_url,"
            " storage_key, content_type, size_bytes) SELECT 'shot_es1', org_id, id, %s, 1, 'open',"
            " 'https://example.org/', org_id || '/shot_es1.jpg', 'image/jpeg', 3 FROM agents WHERE id = %s",
            (task["id"], agent["id"]),
        )
        expect(live).to_have_text("Paso 1: open en https://example.org/", timeout=15_000)  # a loaded machine
        db.execute("UPDATE tasks SET status = 'canceled' WHERE id = %s", (task["id"],))
    expect(live).to_have_text(
        "La tarea se ha cancelado. Recarga la página para ver todos los pasos.", timeout=15_000
    )
    context.close()
