"""Connected tools in the dashboard: the org's MCP servers (status, tools, refresh) and webhook tools (the
signing secret shown once), through the same service as ``/api/v1/mcp-servers`` and ``/api/v1/webhook-tools``.
Agents enable these tools on their settings tab."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hutch.core.errors import Forbidden, HutchError
from hutch.db.engine import UnitOfWork
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import N_, _
from hutch.integrations.schemas import McpServerCreate, WebhookToolCreate
from hutch.integrations.service import ConnectedToolService
from hutch.resources import Resources
from hutch.web.deps import Viewer, ViewerDep, attempt, error_text, field_errors, page
from hutch.web.languages import translated_note

router = APIRouter(prefix="/app/tools", include_in_schema=False)
NOTES = {"refreshed": N_("Tools listed again."), "deleted": N_("Deleted."), "connected": N_("Connected.")}
DEFAULT_PARAMETERS = '{\n  "type": "object",\n  "properties": {\n    "city": {"type": "string"}\n  }\n}'


def manager_only(found: Viewer) -> None:
    if not found.can_manage:
        raise Forbidden(_("Only the organisation's owners and admins can do this."))


def header_lines(text: str) -> tuple[dict[str, str], str | None]:
    """``Name: value`` lines as headers, or what is wrong with them."""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            return {}, _("Write one header per line, as Name: value (not {line!r}).").format(
                line=line.strip()[:40]
            )
        headers[name.strip()] = value.strip()
    return headers, None


async def _tools_page(
    request: Request,
    found: Viewer,
    uow: UnitOfWork,
    resources: Resources,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    service = ConnectedToolService.of(uow, resources)
    servers, _ = await service.page_servers(found.principal, 0, 200)
    webhooks, _ = await service.page_webhooks(found.principal, 0, 200)
    context: dict[str, Any] = {
        "created": None,
        "open_form": None,
        "errors": {},
        "values": {"parameters": DEFAULT_PARAMETERS},
        **extra,
    }
    return page(
        request,
        "app/tools.html",
        found,
        status_code=status_code,
        section="tools",
        servers=servers,
        webhooks=webhooks,
        flash=translated_note(NOTES, request.query_params.get("note")),
        **context,
    )


@router.get("", response_class=HTMLResponse)
async def tools_page(
    request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return await _tools_page(request, found, uow, resources)


@router.post("/mcp", response_class=HTMLResponse)
async def connect_server(
    request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    manager_only(found)
    form = await request.form()
    values = {k: str(form.get(k, "")) for k in ("name", "url", "headers")}
    headers, problem = header_lines(values["headers"])
    errors: dict[str, str] = {"headers": problem} if problem else {}
    if not errors:
        token = str(form.get("bearer_token", "")).strip()
        try:
            body = McpServerCreate(
                name=values["name"], url=values["url"], headers=headers or None, bearer_token=token or None
            )
        except ValidationError as exc:
            errors = field_errors(exc)
        else:
            made = await attempt(
                uow, ConnectedToolService.of(uow, resources).add_server(found.principal, body)
            )
            if not isinstance(made, HutchError):
                return RedirectResponse("/app/tools?note=connected", status_code=303)
            errors = {getattr(made, "field", "form"): error_text(made)}
    values["parameters"] = DEFAULT_PARAMETERS
    return await _tools_page(
        request, found, uow, resources, 422, errors=errors, values=values, open_form="mcp"
    )


@router.post("/mcp/{server_id}/refresh")
async def refresh_server(server_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    manager_only(found)
    await ConnectedToolService.of(uow, resources).refresh_server(found.principal, server_id)
    return RedirectResponse("/app/tools?note=refreshed", status_code=303)


@router.post("/mcp/{server_id}/delete")
async def delete_server(server_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    manager_only(found)
    await ConnectedToolService.of(uow, resources).delete_server(found.principal, server_id)
    return RedirectResponse("/app/tools?note=deleted", status_code=303)


@router.post("/webhooks", response_class=HTMLResponse)
async def create_webhook(
    request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    manager_only(found)
    form = await request.form()
    values = {k: str(form.get(k, "")) for k in ("name", "description", "parameters", "url")}
    errors: dict[str, str] = {}
    try:
        parameters = json.loads(values["parameters"] or "{}")
    except ValueError:
        errors["parameters"] = _("Write the arguments' JSON schema as JSON.")
    if not errors:
        try:
            body = WebhookToolCreate(
                name=values["name"],
                description=values["description"],
                parameters=parameters,
                url=values["url"],
            )
        except ValidationError as exc:
            errors = field_errors(exc)
        else:
            made = await attempt(
                uow, ConnectedToolService.of(uow, resources).add_webhook(found.principal, body)
            )
            if not isinstance(made, HutchError):
                tool, secret = made
                return await _tools_page(
                    request, found, uow, resources, created={"tool": tool, "secret": secret}
                )
            errors = {getattr(made, "field", "form"): error_text(made)}
    return await _tools_page(request, found, uow, resources, 422, errors=errors, values=values)


@router.post("/webhooks/{tool_id}/delete")
async def delete_webhook(tool_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    manager_only(found)
    await ConnectedToolService.of(uow, resources).delete_webhook(found.principal, tool_id)
    return RedirectResponse("/app/tools?note=deleted", status_code=303)
