"""The language pages are shown in: the browser's (``Accept-Language``) or the deployment's default for
every request, replaced by the person's own choice once the dashboard knows who is signed in
(``hutch.web.deps.viewer``). Templates translate with ``{% trans %}``, ``_()`` and ``ngettext()``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from babel import Locale, UnknownLocaleError
from jinja2 import Environment
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from hutch.i18n import (
    N_,
    current_html_lang,
    gettext,
    language_for,
    languages,
    ngettext,
    reset_language,
    set_language,
)
from hutch.i18n.negotiation import accepted
from hutch.settings import Settings


def browser_language(settings: Settings, accept_language: str | None, chosen: str | None = None) -> str:
    """``chosen`` (a profile's) if Hutch speaks it, else the browser's first that it speaks, else the
    default."""
    return language_for(settings, chosen, *accepted(accept_language))


class LanguageMiddleware:
    """Speaks the browser's language (or the default) for the whole request, errors included."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        language = browser_language(self.settings, Headers(scope=scope).get("accept-language"))
        token = set_language(self.settings, language)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_language(token)


# What the dashboard's scripts (static/app.js, static/inbox.js, static/task_live.js) write by themselves,
# given to them by every page in its language.
SCRIPT_TEXTS = {
    "copied": N_("Copied"),
    "bot_connected": N_("Connected: @{bot} answers for this agent now."),
    "bot_not_connected": N_("The bot could not be connected: "),
    "image_sent": N_("Image sent: "),
    "not_sent": N_("The message could not be sent."),
    "connection_lost": N_("The connection was lost; check your network and try again."),
    "team": N_("Team"),
    "you": N_("You"),
    "tokens": N_("{in} in · {out} out"),
    "not_delivered": N_("not delivered"),
    "live": N_("New messages appear here as they arrive."),
    "reconnecting": N_("Reconnecting…"),
    "failed": N_("failed"),
    "task_step": N_("Step {step}: {action} on {page}"),
    "task_completed": N_("The task is done. Reload the page to see every step."),
    "task_failed": N_("The task failed. Reload the page to see every step."),
    "task_canceled": N_("The task was canceled. Reload the page to see every step."),
    "task_deleted": N_("The task was deleted."),
}


def script_texts() -> dict[str, str]:
    return {key: gettext(text) for key, text in SCRIPT_TEXTS.items()}


def install_translations(env: Environment) -> None:
    """Give the templates gettext in the language of the moment, and ``html_lang()`` for ``<html lang>``."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # a {% trans %} block's line breaks and indents are not text
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["html_lang"] = current_html_lang
    env.globals["script_texts"] = script_texts


def translated_note(notes: Mapping[str, str], key: str | None) -> str | None:
    """The note a page shows after a change (``?note=saved``), in the language of the moment."""
    return gettext(notes[key]) if key is not None and key in notes else None


def language_choices(settings: Settings) -> list[tuple[str, str]]:
    """Every language Hutch speaks here as (code, its own name): ``("es", "Español")``."""
    choices = []
    for code in languages(settings):
        try:
            name = Locale.parse(code).get_display_name(code) or code
        except (ValueError, UnknownLocaleError):
            name = code
        choices.append((code, name[:1].upper() + name[1:]))
    return choices


def validation_message(error: Mapping[str, Any]) -> str:
    """A form field's problem as Pydantic found it, in the language of the moment: the usual kinds in
    Hutch's words, a rule's own message (already translated where it was raised) as it is."""
    kind, context = error.get("type"), error.get("ctx") or {}
    if kind == "missing":
        return gettext("This field is required.")
    if kind == "string_too_short":
        if context.get("min_length", 1) <= 1:
            return gettext("This field is required.")
        return gettext("Too short: at least {n} characters.").format(n=context.get("min_length"))
    if kind == "string_too_long":
        return gettext("Too long: at most {n} characters.").format(n=context.get("max_length"))
    if kind in ("int_parsing", "int_from_float"):
        return gettext("Give a whole number.")
    if kind in ("float_parsing", "decimal_parsing"):
        return gettext("Give a number.")
    if kind in ("greater_than_equal", "greater_than"):
        return gettext("Too small: the least is {n}.").format(n=context.get("ge", context.get("gt")))
    if kind in ("less_than_equal", "less_than"):
        return gettext("Too large: the most is {n}.").format(n=context.get("le", context.get("lt")))
    if kind == "value_error" and "email" in str(error.get("msg", "")):
        return gettext("This is not a valid email address.")
    return str(error.get("msg", "")).removeprefix("Value error, ")
