"""What bots say by themselves, in the org's language or the end user's own (when the org allows it), the
model told the end user's language, and an email in its reader's language."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.billing.ledger import LOW_BALANCE_JOB
from hutch.conversations.models import EndUser
from hutch.engine.prompt import language_hint
from hutch.settings import Settings
from tests.channels.test_platform_bot import ADA, PLATFORM_TOKEN, Platform
from tests.channels.test_telegram import OnTelegram
from tests.channels.test_webchat import SHOP, Widget, new_visitor
from tests.conftest import RecordingJobQueue
from tests.factories import create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.smtp import SmtpServer
from tests.fakes.telegram import Sender, sticker_update

SPANISH_HELP = "Escríbeme un mensaje y te responderé."
ENGLISH_HELP = "Write me a message and I will answer."
SPANISH_UNREADABLE = "No puedo leer ese tipo de mensaje."


async def test_an_org_set_to_spanish_gets_its_bots_notices_in_spanish(on_telegram: OnTelegram) -> None:
    t = on_telegram
    assert (await t.say("/help"))[0].startswith(ENGLISH_HELP)
    changed = await t.client.patch("/api/v1/org", json={"language": "es"}, headers=t.owner.headers)
    assert changed.status_code == 200
    [help_text] = await t.say("/help")
    assert help_text.startswith(SPANISH_HELP) and "/reset" in help_text
    assert await t.post(sticker_update(update_id=7001)) == 200
    await t.run_jobs()
    assert t.telegram.sent_texts(Sender().id)[-1].startswith(SPANISH_UNREADABLE)


async def test_an_end_users_telegram_language_is_used_only_when_the_org_allows_it(
    on_telegram: OnTelegram,
) -> None:
    t = on_telegram
    spanish_speaker = Sender(id=5_550_042, first_name="Lucía", username="lucia", language_code="es")
    assert (await t.say("/help", sender=spanish_speaker))[0].startswith(ENGLISH_HELP)  # not allowed yet
    allowed = await t.client.patch(
        "/api/v1/org", json={"use_end_user_language": True}, headers=t.owner.headers
    )
    assert allowed.status_code == 200
    assert (await t.say("/help", sender=spanish_speaker))[0].startswith(SPANISH_HELP)
    assert (await t.say("/help"))[0].startswith(ENGLISH_HELP)  # Ada's app is in English
    unspoken = Sender(id=5_550_043, first_name="Kenji", username="kenji", language_code="ja")
    assert (await t.say("/help", sender=unspoken))[0].startswith(ENGLISH_HELP)  # no Japanese: the org's


async def test_the_model_is_told_the_end_users_language_and_it_is_kept(
    on_telegram: OnTelegram, fake_llm: FakeLLMServer
) -> None:
    t = on_telegram
    await t.client.patch(
        f"/api/v1/agents/{t.agent_id}", json={"model": "openai/gpt-4o-mini"}, headers=t.owner.headers
    )
    fake_llm.script(ScriptedReply(content="¡Hola!"))
    lucia = Sender(id=5_550_044, first_name="Lucía", username="lucia", language_code="es")
    assert await t.say("hola", sender=lucia) == ["¡Hola!"]
    system = fake_llm.requests[-1].body["messages"][0]
    assert system["role"] == "system" and "The user's app is set to Spanish (es)" in str(system["content"])
    of_lucia = select(EndUser.language).where(EndUser.external_id == f"telegram:{lucia.id}")
    assert await t.session.scalar(of_lucia) == "es"
    assert language_hint(None) is None


async def test_a_spanish_person_gets_their_emails_in_spanish(
    client: AsyncClient,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
    session: AsyncSession,
    settings: Settings,
) -> None:
    owner = await create_account(session, settings)
    await client.patch("/api/v1/users/me", json={"language": "es"}, headers=owner.headers)
    sent = await client.post("/api/v1/auth/password-reset/request", json={"email": owner.user.email})
    assert sent.status_code == 202
    await jobs.run_pending()
    [email] = mailbox.wait_for(owner.user.email)
    assert email.subject == "Restablece tu contraseña"
    assert "Elige una contraseña nueva aquí" in email.body and "60 minutos" in email.body
    assert email.html is not None and '<html lang="es">' in email.html and "Restablece" in email.html
    assert email.link("/reset-password").startswith("https://hutch.example/reset-password?token=")


async def test_the_widget_speaks_the_orgs_language_or_the_visitors_when_allowed(widget: Widget) -> None:
    w = widget
    spanish_visitor = {"Origin": SHOP, "Accept-Language": "es-ES,es;q=0.9"}
    config = (await w.client.get(w.api, headers=spanish_visitor)).json()
    assert (
        config["greeting"] == "Hello! I am Shop helper. How can I help?" and config["texts"]["send"] == "Send"
    )

    allow = {"use_end_user_language": True}
    assert (await w.client.patch("/api/v1/org", json=allow, headers=w.owner.headers)).status_code == 200
    config = (await w.client.get(w.api, headers=spanish_visitor)).json()
    assert config["greeting"] == "¡Hola! Soy Shop helper. ¿En qué puedo ayudarte?"
    assert config["texts"]["send"] == "Enviar" and config["texts"]["write_message"] == "Escribe un mensaje"

    # Over the limit: the refusal the visitor reads is in their language too (3 messages a minute here).
    visitor = new_visitor()
    for text in ("uno", "dos", "tres"):
        assert (await w.send(visitor, text, origin=SHOP)).status_code == 200
    refused = await w.client.post(
        f"{w.api}/messages", json={"visitor_id": visitor, "text": "cuatro"}, headers=spanish_visitor
    )
    assert refused.status_code == 429
    assert refused.json()["detail"] == "Estás enviando mensajes demasiado rápido. Espera un momento."


async def test_owners_hear_notices_in_their_own_language_in_email_and_chat(
    platform: Platform, mailbox: SmtpServer
) -> None:
    p = platform
    started = await p.deep_link()
    await p.say(f"/start {started['code']}")  # the owner's Telegram chat is linked
    await p.client.patch("/api/v1/users/me", json={"language": "es"}, headers=p.owner.headers)
    assert isinstance(p.resources.jobs, RecordingJobQueue)
    emailed = await p.resources.jobs.execute(
        LOW_BALANCE_JOB,
        {"org_id": p.owner.org.id, "credits_cents": 150},
        job_id=0,
        attempt=0,
        resources=p.resources,
    )
    assert emailed == 1
    await p.resources.jobs.run_pending()
    assert p.telegram.sent_texts(ADA.id, PLATFORM_TOKEN)[-1].startswith(
        "Te quedan pocos créditos prepago: $1.50."
    )
    [email] = mailbox.wait_for(p.owner.user.email)
    assert email.subject.endswith(": quedan pocos créditos prepago")
    assert "Compra un paquete prepago" in email.body
