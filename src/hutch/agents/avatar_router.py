"""An agent's avatar: upload (JPEG, PNG or WebP up to 5 MB), read, remove."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from hutch.agents.avatars import MAX_BYTES, Avatars
from hutch.agents.models import Agent
from hutch.agents.repository import AgentRepository
from hutch.core.errors import (
    BadRequest,
    Forbidden,
    InvalidField,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    error_responses,
)
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.http.authz import Reader, Writer
from hutch.http.dependencies import UoWDep

router = APIRouter(prefix="/api/v1/agents/{agent_id}/avatar", tags=["agents"])
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around the picture
UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
        "required": True,
    }
}


class AvatarOut(BaseModel):
    url: str
    content_type: str
    width: int
    height: int


async def _agent(uow: UnitOfWork, principal: Principal, agent_id: str) -> Agent:
    agent = await AgentRepository(uow.session).get(principal, agent_id)
    if agent is None:
        raise NotFound("Agent")
    return agent


@router.put(
    "",
    response_model=AvatarOut,
    openapi_extra=UPLOAD_SCHEMA,
    responses=error_responses(
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, InvalidField
    ),
)
async def put_avatar(agent_id: str, request: Request, principal: Writer, uow: UoWDep) -> AvatarOut:
    """Set the agent's picture. The image is checked by its content, shrunk to at most 512 by 512 and
    stored as PNG; bots the factory makes get it as their profile photo."""
    agent = await _agent(uow, principal, agent_id)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("Send the picture as the multipart field 'file'.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES + FORM_OVERHEAD:
        raise PayloadTooLarge(f"Avatars can be up to {MAX_BYTES // (1024 * 1024)} MB; this upload is larger.")
    form = await request.form(max_files=1, max_fields=5)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequest("Send the picture as the multipart field 'file'.")
    data = await upload.read(MAX_BYTES + 1)
    avatar = await Avatars(uow.session).put(agent, data)
    return AvatarOut(
        url=f"/api/v1/agents/{agent.id}/avatar",
        content_type=avatar.content_type,
        width=avatar.width,
        height=avatar.height,
    )


@router.get(
    "",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **error_responses(Unauthorized, Forbidden, NotFound)},
)
async def get_avatar(agent_id: str, principal: Reader, uow: UoWDep) -> Response:
    """The agent's picture (PNG); 404 when it has none."""
    avatar = await Avatars(uow.session).get(await _agent(uow, principal, agent_id))
    if avatar is None:
        raise NotFound("Avatar")
    return Response(
        avatar.data, media_type=avatar.content_type, headers={"Cache-Control": "private, max-age=300"}
    )


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def delete_avatar(agent_id: str, principal: Writer, uow: UoWDep) -> Response:
    """Remove the agent's picture."""
    if not await Avatars(uow.session).delete(await _agent(uow, principal, agent_id)):
        raise NotFound("Avatar")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
