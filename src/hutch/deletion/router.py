"""Deleting an agent (``DELETE /api/v1/agents/{id}``), organisations and users (platform admins), and
everyone's own data: export it, delete the account."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import FileResponse

from hutch.core.bounds import Limit, Skip
from hutch.core.errors import Conflict, Forbidden, NotFound, Unauthorized, error_responses
from hutch.core.request_context import client_ip
from hutch.deletion.dependencies import DeletionsDep, ExportsDep
from hutch.deletion.exports import ExportGone
from hutch.deletion.flow import delete_agent as delete_agent_and_its_parts
from hutch.deletion.schemas import DeletionOut, DeletionPage, ExportList, ExportOut
from hutch.http.authz import PlatformAdmin, SignedInUser, Writer
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(prefix="/api/v1", tags=["agents"])
ADMIN = error_responses(Unauthorized, Forbidden, NotFound, Conflict)
MINE = error_responses(Unauthorized, Forbidden, NotFound)


@router.delete(
    "/agents/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def delete_agent(agent_id: str, principal: Writer, uow: UoWDep, resources: ResourcesDep) -> Response:
    """Delete an agent with its conversations and memories (and its dedicated runtime, at once)."""
    await delete_agent_and_its_parts(uow, resources, principal, agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/admin/orgs/{org_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeletionOut,
    responses=ADMIN,
    tags=["admin"],
)
async def delete_org(
    org_id: str, request: Request, admin: PlatformAdmin, deletions: DeletionsDep
) -> DeletionOut:
    """Delete an organisation for good, in a job: export its data (a ZIP kept for you), remove its bots'
    webhooks, its runtimes, its Stripe customer, then its data and the members left in no organisation.
    Follow it with `GET /api/v1/admin/deletions/{id}`. Audited."""
    return DeletionOut.of(await deletions.delete_org(org_id, admin, client_ip(request)))


@router.delete(
    "/admin/users/{user_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeletionOut,
    responses=ADMIN,
    tags=["admin"],
)
async def delete_user(
    user_id: str, request: Request, admin: PlatformAdmin, deletions: DeletionsDep
) -> DeletionOut:
    """Delete a user for good, in a job, with the organisations they own alone (exported first). Audited."""
    return DeletionOut.of(await deletions.delete_user(user_id, admin, client_ip(request)))


@router.get("/admin/deletions", response_model=DeletionPage, responses=ADMIN, tags=["admin"])
async def deletions_page(
    _: PlatformAdmin,
    deletions: DeletionsDep,
    skip: Skip = 0,
    limit: Limit = 50,
) -> DeletionPage:
    """Deletions of organisations and users, newest first, with what each step did."""
    found, total = await deletions.page(skip, limit)
    return DeletionPage(items=[DeletionOut.of(d) for d in found], total=total)


@router.get("/admin/deletions/{deletion_id}", response_model=DeletionOut, responses=ADMIN, tags=["admin"])
async def deletion(deletion_id: str, _: PlatformAdmin, deletions: DeletionsDep) -> DeletionOut:
    """One deletion: its status, each step's report, and the error it stopped on, if any."""
    return DeletionOut.of(await deletions.get(deletion_id))


@router.post(
    "/admin/deletions/{deletion_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeletionOut,
    responses=ADMIN,
    tags=["admin"],
)
async def retry_deletion(
    deletion_id: str, request: Request, admin: PlatformAdmin, deletions: DeletionsDep
) -> DeletionOut:
    """Run a failed deletion again from the step it stopped at. Audited."""
    return DeletionOut.of(await deletions.retry(deletion_id, admin, client_ip(request)))


@router.post(
    "/users/me/export",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportOut,
    responses=MINE,
    tags=["accounts"],
)
async def export_my_data(user: SignedInUser, exports: ExportsDep) -> ExportOut:
    """Export your account and the organisations you own or administer: a ZIP of JSON files (account,
    agents, documents, conversations, ledger), built in a job. Poll `GET /users/me/exports/{id}`."""
    return ExportOut.of(await exports.request(user))


@router.get("/users/me/exports", response_model=ExportList, responses=MINE, tags=["accounts"])
async def my_exports(user: SignedInUser, exports: ExportsDep) -> ExportList:
    """Your exports, newest first (and those kept for you by deletions you asked for)."""
    return ExportList(items=[ExportOut.of(e) for e in await exports.recent(user.id)])


@router.get("/users/me/exports/{export_id}", response_model=ExportOut, responses=MINE, tags=["accounts"])
async def my_export(export_id: str, user: SignedInUser, exports: ExportsDep) -> ExportOut:
    """One of your exports; `download_url` once it is ready, until it expires."""
    return ExportOut.of(await exports.mine(user.id, export_id))


@router.get(
    "/users/me/exports/{export_id}/download",
    response_class=FileResponse,
    responses={**MINE, **error_responses(Conflict, ExportGone)},
    tags=["accounts"],
)
async def download_my_export(export_id: str, user: SignedInUser, exports: ExportsDep) -> FileResponse:
    """The export's ZIP, for the user who asked for it only; 410 once it has expired."""
    path = await exports.file_of(user.id, export_id)
    return FileResponse(path, media_type="application/zip", filename=f"hutch-export-{export_id}.zip")


@router.delete(
    "/users/me",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeletionOut,
    responses=error_responses(Unauthorized, Forbidden, Conflict),
    tags=["accounts"],
)
async def delete_me(user: SignedInUser, request: Request, deletions: DeletionsDep) -> DeletionOut:
    """Delete your account for good, in a job, with the organisations you are the last owner of (their
    agents, documents, conversations, bots, runtimes and Stripe customer). Export your data first."""
    return DeletionOut.of(await deletions.delete_me(user, client_ip(request)))
