"""The fake Telegram Bot API speaks the real wire format well enough for python-telegram-bot."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter

from tests.fakes.telegram import (
    SECRET_TOKEN_HEADER,
    FakeTelegramServer,
    Sender,
    callback_query_update,
    edited_text_update,
    group_chat,
    new_bot_token,
    photo_update,
    start_update,
    sticker_update,
    text_update,
    voice_update,
    webhook_headers,
)

TOKEN = "7000000001:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
OTHER_TOKEN = "7000000002:AAGx1uVhBqK3nY9c2b8Z0pWq4rT6sU7vXyZ"


@pytest.fixture
def fake_telegram(telegram_server: FakeTelegramServer) -> FakeTelegramServer:
    telegram_server.reset()
    telegram_server.add_bot(TOKEN, "hutch_shop_bot", "Hutch Shop")
    return telegram_server


@pytest.fixture
async def bot(fake_telegram: FakeTelegramServer) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(TOKEN, base_url=fake_telegram.api_base) as bot:
        yield bot


async def test_get_me_answers_the_registered_bot_and_unknown_tokens_are_unauthorized(
    bot: telegram.Bot, fake_telegram: FakeTelegramServer
) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.first_name, me.is_bot) == (
        7000000001,
        "hutch_shop_bot",
        "Hutch Shop",
        True,
    )
    stranger = telegram.Bot(OTHER_TOKEN, base_url=fake_telegram.api_base)
    with pytest.raises(InvalidToken, match="Unauthorized"):
        await stranger.get_me()
    assert [(c.method, c.token, c.status) for c in fake_telegram.recorded("getMe")][-1] == (
        "getMe",
        OTHER_TOKEN,
        401,
    )


async def test_webhook_is_set_with_its_secret_and_removed(
    bot: telegram.Bot, fake_telegram: FakeTelegramServer
) -> None:
    assert await bot.set_webhook(
        "https://hutch.example.com/telegram/webhook/abc",
        secret_token="s3cret-Token_1",
        allowed_updates=["message", "edited_message", "callback_query"],
        drop_pending_updates=True,
    )
    info = await bot.get_webhook_info()
    assert info.url == "https://hutch.example.com/telegram/webhook/abc"
    assert info.allowed_updates == ("message", "edited_message", "callback_query")
    webhook = fake_telegram.webhook(TOKEN)
    assert webhook is not None
    assert (webhook.secret_token, webhook.dropped_pending_updates) == ("s3cret-Token_1", True)

    with pytest.raises(BadRequest, match=r"(?i)an https url must be provided"):
        await bot.set_webhook("http://hutch.example.com/telegram/webhook/abc")
    with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
        await bot.set_webhook("https://hutch.example.com/hook", secret_token="no spaces allowed")

    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    assert fake_telegram.webhook(TOKEN) is None


async def test_sent_messages_come_back_as_real_messages_numbered_per_chat(
    bot: telegram.Bot, fake_telegram: FakeTelegramServer
) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="plan:yes")]])
    first = await bot.send_message(
        42, "<b>Hello</b> &amp; welcome", parse_mode=ParseMode.HTML, reply_markup=keyboard
    )
    second = await bot.send_message(42, "Second")
    elsewhere = await bot.send_message(43, "Other chat")

    assert (first.message_id, second.message_id, elsewhere.message_id) == (1, 2, 1)
    assert first.text == "Hello & welcome"
    assert first.entities[0].type == "bold" and first.entities[0].length == 5
    assert first.from_user is not None and first.from_user.username == "hutch_shop_bot"
    assert first.chat.id == 42 and first.chat.type == "private"
    assert first.reply_markup == keyboard
    assert abs(first.date - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)

    assert fake_telegram.sent_texts(42) == ["Hello & welcome", "Second"]
    sent = fake_telegram.sent_messages(42)[0]
    assert sent.text == "<b>Hello</b> &amp; welcome" and sent.parse_mode == "HTML"
    assert sent.reply_markup == {"inline_keyboard": [[{"text": "Yes", "callback_data": "plan:yes"}]]}


async def test_message_length_and_broken_markup_are_refused_as_telegram_does(bot: telegram.Bot) -> None:
    assert (await bot.send_message(42, "x" * 4096)).text == "x" * 4096
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(42, "x" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(42, "<b></b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities: can't find end tag"):
        await bot.send_message(42, "<b>unclosed", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r'(?i)unsupported start tag "div"'):
        await bot.send_message(42, "<div>block</div>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)character '.' is reserved"):
        await bot.send_message(42, "Price: 5.00", parse_mode=ParseMode.MARKDOWN_V2)
    with pytest.raises(BadRequest, match=r"(?i)can't find end of bold entity"):
        await bot.send_message(42, "*bold", parse_mode=ParseMode.MARKDOWN_V2)

    escaped = await bot.send_message(
        42, r"*Total:* 5\.00 \- [docs](https://example.com/a_b)", parse_mode=ParseMode.MARKDOWN_V2
    )
    assert escaped.text == "Total: 5.00 - docs"
    assert [(e.type, e.offset, e.length) for e in escaped.entities] == [("bold", 0, 6), ("text_link", 14, 4)]
    assert escaped.entities[1].url == "https://example.com/a_b"


async def test_chat_actions_edits_callback_answers_and_commands(
    bot: telegram.Bot, fake_telegram: FakeTelegramServer
) -> None:
    assert await bot.send_chat_action(42, ChatAction.TYPING)
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(42, "dancing")
    assert fake_telegram.chat_actions(42) == ["typing"]

    sent = await bot.send_message(42, "Thinking...")
    edited = await bot.edit_message_text("Here is the answer", chat_id=42, message_id=sent.message_id)
    assert isinstance(edited, telegram.Message) and edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Here is the answer", chat_id=42, message_id=sent.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("nope", chat_id=42, message_id=999)
    assert fake_telegram.sent_texts(42) == ["Here is the answer"]
    assert fake_telegram.sent_messages(42)[0].edits == ["Thinking..."]

    assert await bot.answer_callback_query("4382bfdwdsb323b2d9", text="Saved")
    assert fake_telegram.recorded("answerCallbackQuery")[0].params["text"] == "Saved"

    assert await bot.set_my_commands([("start", "Start over"), ("help", "What I can do")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Bad-Command", "nope")])


async def test_menus_names_and_descriptions_are_kept_per_language_as_telegram_shows_them(
    bot: telegram.Bot, fake_telegram: FakeTelegramServer
) -> None:
    assert await bot.set_my_commands([("help", "What I can do")])
    assert await bot.set_my_commands([("help", "Lo que puedo hacer")], language_code="es")
    assert await bot.set_my_description("Hello! Write me.")
    assert await bot.set_my_description("¡Hola! Escríbeme.", language_code="es")
    assert await bot.set_my_short_description("A shop")
    assert await bot.set_my_short_description("Una tienda", language_code="es")
    assert await bot.set_my_name("Tienda", language_code="es")

    assert [c.description for c in await bot.get_my_commands(language_code="es")] == ["Lo que puedo hacer"]
    assert (await bot.get_my_description(language_code="es")).description == "¡Hola! Escríbeme."
    assert (await bot.get_my_description(language_code="de")).description == "Hello! Write me."
    assert (await bot.get_my_short_description(language_code="es")).short_description == "Una tienda"
    assert (await bot.get_my_name(language_code="es")).name == "Tienda"
    assert (await bot.get_my_name()).name == "Hutch Shop"

    shop = fake_telegram.bots[TOKEN]
    spanish, german = shop.shown_to("es-419"), shop.shown_to("de")
    assert spanish.commands == [{"command": "help", "description": "Lo que puedo hacer"}]
    assert spanish.description == "¡Hola! Escríbeme." and spanish.name == "Tienda"
    assert german.commands == [{"command": "help", "description": "What I can do"}]
    assert german.description == "Hello! Write me." and german.short_description == "A shop"

    assert await bot.set_my_name("", language_code="es")  # an empty text removes the dedicated one
    assert shop.shown_to("es").name == "Hutch Shop"
    for code in ("pt_BR", "pt-br", "ES", "spa"):  # Telegram takes two-letter ISO 639-1 codes
        with pytest.raises(BadRequest, match="Lang_code_invalid"):
            await bot.set_my_description("Olá", language_code=code)
    assert set(shop.descriptions) == {"es"}


# PTB 22 warns that ``retry_after`` becomes a timedelta in its next major version; both shapes are read.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_answers_429_with_retry_after_then_recovers(
    bot: telegram.Bot, fake_telegram: FakeTelegramServer
) -> None:
    fake_telegram.rate_limit("sendMessage", retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(42, "too fast")
    retry_after = caught.value.retry_after
    assert (retry_after.total_seconds() if isinstance(retry_after, dt.timedelta) else retry_after) == 7
    assert (await bot.send_message(42, "later")).message_id == 1
    assert fake_telegram.sent_texts(42) == ["later"]
    assert [c.status for c in fake_telegram.recorded("sendMessage")] == [429, 200]


async def test_a_user_who_blocked_the_bot_answers_403(
    bot: telegram.Bot, fake_telegram: FakeTelegramServer
) -> None:
    fake_telegram.block(42)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(42, "hello?")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(42, ChatAction.TYPING)
    assert (await bot.send_message(43, "someone else")).text == "someone else"
    fake_telegram.unblock(42)
    assert (await bot.send_message(42, "back")).message_id == 1


async def test_bad_gateway_answers_plain_html_and_the_client_sees_a_network_error(
    bot: telegram.Bot, fake_telegram: FakeTelegramServer
) -> None:
    fake_telegram.bad_gateway("sendMessage")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(42, "hello")
    assert fake_telegram.sent_messages(42) == []
    fake_telegram.fail("sendMessage", 400, "Bad Request: chat not found", chat_id=44)
    assert (await bot.send_message(42, "fine")).text == "fine"
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(44, "hello")


async def test_several_bots_and_raw_http_forms(fake_telegram: FakeTelegramServer) -> None:
    other_token = new_bot_token(7000000003)
    fake_telegram.add_bot(other_token, "support_bot")
    async with httpx.AsyncClient(base_url=fake_telegram.api_base[: -len("/bot")]) as client:
        # Telegram accepts GET with a query string, form bodies, and any case in the method name.
        got = await client.get(f"/bot{other_token}/SENDMESSAGE", params={"chat_id": "42", "text": "123"})
        posted = await client.post(
            f"/bot{TOKEN}/sendMessage",
            data={"chat_id": "42", "text": "form", "reply_markup": '{"inline_keyboard": []}'},
        )
        missing = await client.post(f"/bot{TOKEN}/getUpdatesPlease", json={})
    assert got.json()["result"]["text"] == "123"
    assert got.json()["result"]["from"]["username"] == "support_bot"
    assert posted.json()["result"]["message_id"] == 1
    assert missing.status_code == 404
    assert missing.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert fake_telegram.sent_texts(42, token=other_token) == ["123"]
    assert fake_telegram.sent_texts(42, token=TOKEN) == ["form"]


def test_built_updates_parse_as_real_updates() -> None:
    ada = Sender(id=9001, first_name="Ada", username="ada_l")
    text = Update.de_json(text_update("hi there", sender=ada), None)
    assert text.message is not None and text.message.text == "hi there"
    assert text.effective_user is not None and text.effective_user.id == 9001
    assert text.effective_chat is not None and text.effective_chat.type == "private"

    start = Update.de_json(start_update("ref_123", sender=ada), None)
    assert start.message is not None and start.message.text == "/start ref_123"
    assert start.message.parse_entities(["bot_command"]).popitem()[1] == "/start"
    assert start.update_id > text.update_id

    edited = Update.de_json(edited_text_update("fixed", message_id=17, sender=ada), None)
    assert edited.edited_message is not None and edited.edited_message.message_id == 17
    assert edited.edited_message.edit_date is not None

    photo = Update.de_json(photo_update(caption="my cat", chat=group_chat(-1009876543210)), None)
    assert photo.message is not None and photo.message.caption == "my cat"
    assert photo.message.photo[-1].width == 1280
    assert photo.effective_chat is not None and photo.effective_chat.type == "supergroup"

    voice = Update.de_json(voice_update(duration=9), None)
    assert voice.message is not None and voice.message.voice is not None
    assert (voice.message.voice.mime_type, voice.message.voice.file_size) == ("audio/ogg", 36_000)

    sticker = Update.de_json(sticker_update(emoji="\N{GRINNING FACE}"), None)
    assert sticker.message is not None and sticker.message.sticker is not None
    assert sticker.message.sticker.emoji == "\N{GRINNING FACE}"

    press = Update.de_json(
        callback_query_update("plan:yes", message_id=5, bot_id=7000000001, bot_username="hutch_shop_bot"),
        None,
    )
    assert press.callback_query is not None and press.callback_query.data == "plan:yes"
    assert press.callback_query.message is not None and press.callback_query.message.message_id == 5


def test_webhook_headers_carry_the_secret_token() -> None:
    assert webhook_headers("s3cret")[SECRET_TOKEN_HEADER] == "s3cret"
    assert SECRET_TOKEN_HEADER not in webhook_headers(None)


async def test_managed_bots_speak_the_bot_api_as_python_telegram_bot_reads_it(
    fake_telegram: FakeTelegramServer,
) -> None:
    manager = "7000000009:AAManagerBotTokenForManagedBotsTest0"
    fake_telegram.add_bot(manager, "maker_bot", can_manage_bots=True)
    user = Sender()
    async with telegram.Bot(manager, base_url=fake_telegram.api_base) as bot:
        assert (await bot.get_me()).can_manage_bots is True
        ask = telegram.KeyboardButtonRequestManagedBot(
            42, suggested_name="Shop", suggested_username="shop_1_bot"
        )
        keyboard = telegram.ReplyKeyboardMarkup(
            [[telegram.KeyboardButton("Create", request_managed_bot=ask)]]
        )
        with pytest.raises(BadRequest, match="private chats"):
            await bot.send_message(group_chat()["id"], "Make one", reply_markup=keyboard)
        await bot.send_message(user.id, "Make one", reply_markup=keyboard)
        updates = [Update.de_json(u, bot) for u in fake_telegram.press_managed_bot_button(manager, user)]
        assert updates[0].managed_bot is not None and updates[0].managed_bot.user.id == user.id
        made = updates[0].managed_bot.bot
        assert made.username == "shop_1_bot" and made.first_name == "Shop" and made.is_bot
        message = updates[1].message
        assert message is not None and message.managed_bot_created is not None
        assert message.managed_bot_created.bot.id == made.id
        token = await bot.get_managed_bot_token(made.id)
        async with telegram.Bot(token, base_url=fake_telegram.api_base) as created:
            assert (await created.get_me()).username == "shop_1_bot"
        fake_telegram.revoke_token(token)
        with pytest.raises(InvalidToken):
            async with telegram.Bot(token, base_url=fake_telegram.api_base) as revoked:
                await revoked.get_me()
        assert await bot.get_managed_bot_token(made.id) != token  # the manager reads the new one
        with pytest.raises(BadRequest, match=r"(?i)bot_not_managed"):
            await bot.get_managed_bot_token(123)
