"""The language of what an agent's channel says by itself (refusals, limits, "linked!", help): the org's
choice, or the end user's own when the org allows it and their channel told it (docs/languages.md).
Agent replies are the model's: it gets the end user's language as a hint in its instructions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.i18n import is_supported, language_for
from hutch.i18n.negotiation import accepted
from hutch.settings import Settings


def choose_notice_language(
    settings: Settings, org: Org | None, end_user_language: str | None, *, no_org_uses_end_user: bool = True
) -> str:
    """The end user's language when the org allows it (and Hutch speaks it), else the org's, else the
    deployment's default. Without an org (the platform bot before a chat is linked), the end user's."""
    if org is None:
        return language_for(settings, end_user_language if no_org_uses_end_user else None)
    if org.use_end_user_language:
        return language_for(settings, end_user_language, org.language)
    return language_for(settings, org.language)


async def notice_language(
    session: AsyncSession, settings: Settings, org_id: str | None, end_user_language: str | None
) -> str:
    """:func:`choose_notice_language` for the org ``org_id`` (read by its primary key)."""
    org = await session.get(Org, org_id) if org_id is not None else None
    return choose_notice_language(settings, org, end_user_language)


def browser_choice(settings: Settings, accept_language: str | None) -> str | None:
    """The first language of a browser's ``Accept-Language`` that Hutch speaks, else None."""
    return next(
        (found for code in accepted(accept_language) if (found := is_supported(settings, code))), None
    )
