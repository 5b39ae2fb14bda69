"""What Hutch says, in the language of whoever reads it (docs/languages.md).

Text is written in English and marked: ``_("...")`` where it is said, ``N_("...")`` where a constant is
defined (it is translated where it is used, with ``_(CONSTANT)``), ``ngettext(one, many, n)`` for plurals.
The language of the moment is a context variable: set for a request (the person's choice or their
browser's) by the web middleware and the dashboard's sign-in check, and for a job's notice or email with
``use_language``. Outside of both, it is English.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass

from hutch.i18n.catalogues import (
    SOURCE_LANGUAGE,
    available_languages,
    html_lang,
    supported,
    translations,
)
from hutch.settings import Settings


@dataclass(frozen=True)
class Speaking:
    language: str
    messages: _gettext.NullTranslations


_ENGLISH = Speaking(SOURCE_LANGUAGE, _gettext.NullTranslations())
_speaking: ContextVar[Speaking] = ContextVar("hutch_language", default=_ENGLISH)


def gettext(message: str) -> str:
    """``message`` in the language of the moment."""
    return _speaking.get().messages.gettext(message)


_ = gettext


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` that suits ``n``, in the language of the moment."""
    return _speaking.get().messages.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks ``message`` for the catalogues without translating it (module constants)."""
    return message


class Wording(str):
    """English text made of a marked message and its values, that can also say itself in the language of
    the moment: an error's detail stays English in the API's answers, and the page that shows it says
    ``said()``. Mark the message where it is written: ``Wording(N_("{name} is linked."), name=label)``."""

    message: str
    values: dict[str, object]

    def __new__(cls, message: str, **values: object) -> Wording:
        text = super().__new__(cls, message.format(**values))
        text.message, text.values = message, values
        return text

    def said(self) -> str:
        return gettext(self.message).format(**self.values)


def said(text: str) -> str:
    """``text`` in the language of the moment when it is a :class:`Wording`, else as it is."""
    return text.said() if isinstance(text, Wording) else text


def current_language() -> str:
    return _speaking.get().language


def current_html_lang() -> str:
    """The language of the moment as ``<html lang>`` wants it."""
    return html_lang(current_language())


def languages(settings: Settings) -> tuple[str, ...]:
    """Every language Hutch can speak here: English, Hutch's catalogues and the operator's."""
    return available_languages(settings.locales_dir)


def is_supported(settings: Settings, code: str | None) -> str | None:
    """``code`` as a language Hutch has a catalogue for (``es-ES`` → ``es``), else None."""
    return supported(code, settings.locales_dir)


def language_for(settings: Settings, *choices: str | None) -> str:
    """The first of ``choices`` Hutch can speak, else the deployment's default language."""
    for choice in choices:
        found = supported(choice, settings.locales_dir)
        if found is not None:
            return found
    return supported(settings.default_language, settings.locales_dir) or SOURCE_LANGUAGE


def set_language(settings: Settings, language: str) -> Token[Speaking]:
    """Speak ``language`` (one :func:`language_for` chose) from now on in this context."""
    return _speaking.set(Speaking(language, translations(language, settings.locales_dir)))


def reset_language(token: Token[Speaking]) -> None:
    _speaking.reset(token)


@contextmanager
def use_language(settings: Settings, language: str | None) -> Iterator[str]:
    """Speak ``language`` (or the default, when Hutch has no catalogue for it) inside the block."""
    chosen = language_for(settings, language)
    token = set_language(settings, chosen)
    try:
        yield chosen
    finally:
        _speaking.reset(token)


__all__ = [
    "N_",
    "Wording",
    "_",
    "current_html_lang",
    "current_language",
    "gettext",
    "is_supported",
    "language_for",
    "languages",
    "ngettext",
    "reset_language",
    "said",
    "set_language",
    "use_language",
]
