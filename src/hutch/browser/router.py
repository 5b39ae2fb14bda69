"""The screenshots an agent's browser took, for the members of the agent's org."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hutch.browser.service import SCREENSHOT_PATH, Screenshots
from hutch.core.errors import NotFound, Unauthorized, error_responses
from hutch.http.authz import Reader
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(tags=["browser"])


@router.get(
    SCREENSHOT_PATH.replace("{id}", "{screenshot_id}"),
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **error_responses(Unauthorized, NotFound)},
)
async def get_screenshot(
    screenshot_id: str, principal: Reader, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """The screen after one of an agent's browser actions (a message's tool call, a task's step), as a
    JPEG image; 404 for anyone outside the agent's org."""
    image = await Screenshots(uow.session, resources.screenshots).image(principal, screenshot_id)
    return Response(
        image.data, media_type=image.content_type, headers={"Cache-Control": "private, max-age=3600"}
    )
