"""API key endpoints. Keys are managed by signed-in members; keys cannot create or revoke keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from hutch.apikeys import service
from hutch.apikeys.models import ApiKey
from hutch.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut, ApiKeyUpdate
from hutch.core.errors import (
    Conflict,
    Forbidden,
    InvalidField,
    NotFound,
    Unauthorized,
    error_responses,
)
from hutch.core.request_context import client_ip
from hutch.http.authz import CurrentUser, Reader
from hutch.http.dependencies import UoWDep

router = APIRouter(prefix="/api/v1", tags=["api keys"])


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(key, from_attributes=True)


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=error_responses(Unauthorized, Forbidden),
)
async def create_api_key(
    body: ApiKeyCreate, request: Request, principal: CurrentUser, uow: UoWDep
) -> ApiKeyCreated:
    """Create a key for the current org. The `key` is shown in this answer only: store it now."""
    key, plaintext = await service.create_api_key(uow.session, principal, body, client_ip(request))
    return ApiKeyCreated(**_out(key).model_dump(), key=plaintext)


@router.get("/api-keys", response_model=ApiKeyList, responses=error_responses(Unauthorized, Forbidden))
async def list_api_keys(principal: CurrentUser, uow: UoWDep) -> ApiKeyList:
    """The current org's keys, newest first (never the keys themselves)."""
    return ApiKeyList(items=[_out(k) for k in await service.list_api_keys(uow.session, principal)])


@router.get("/api-keys/current", response_model=ApiKeyOut, responses=error_responses(Unauthorized, Forbidden))
async def current_api_key(principal: Reader, uow: UoWDep) -> ApiKeyOut:
    """The key making this request (for clients checking their own key's scopes, limits and expiry)."""
    return _out(await service.current_api_key(uow.session, principal))


@router.patch(
    "/api-keys/{key_id}",
    response_model=ApiKeyOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidField),
)
async def update_api_key(
    key_id: str, body: ApiKeyUpdate, request: Request, principal: CurrentUser, uow: UoWDep
) -> ApiKeyOut:
    """Change a key's label, expiry, rate limit, monthly budget or allowed agents. Fields left out stay as
    they are; null removes that limit (`agent_ids: null`: every agent). The key itself does not change."""
    return _out(await service.update_api_key(uow.session, principal, key_id, body, client_ip(request)))


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def revoke_api_key(key_id: str, request: Request, principal: CurrentUser, uow: UoWDep) -> Response:
    """Revoke a key; it stops working on its next request."""
    await service.revoke_api_key(uow.session, principal, key_id, client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
