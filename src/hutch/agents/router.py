"""Agent endpoints: CRUD, role templates, tools, the model catalog and provider keys."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hutch.agents.dependencies import AgentServiceDep
from hutch.agents.models import Agent, Placement, ProviderKey
from hutch.agents.roles import ROLE_TEMPLATES
from hutch.agents.schemas import (
    AgentCreate,
    AgentList,
    AgentOut,
    AgentUpdate,
    ModelList,
    ModelOut,
    ProviderKeyCreate,
    ProviderKeyList,
    ProviderKeyOut,
    RoleTemplateList,
    RoleTemplateOut,
    ToolList,
    ToolOut,
)
from hutch.agents.service import ProviderKeyService, org_credentials
from hutch.core.bounds import Limit, Skip
from hutch.core.errors import (
    Conflict,
    Forbidden,
    InvalidField,
    NotFound,
    QuotaExceeded,
    Unauthorized,
    error_responses,
)
from hutch.engine.catalog import ProviderKind
from hutch.engine.tools import TOOLS
from hutch.http.authz import OrgAdmin, Reader, Writer
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.http.placement import RuntimePlacerDep
from hutch.integrations.tools import connected_choices
from hutch.resources import Resources

router = APIRouter(prefix="/api/v1", tags=["agents"])


def agent_out(agent: Agent) -> AgentOut:
    return AgentOut(
        id=agent.id,
        slug=agent.slug,
        name=agent.name,
        role=agent.role,
        system_prompt=agent.system_prompt,
        model=agent.model,
        fallback_model=agent.fallback_model,
        temperature=float(agent.temperature),
        max_tokens=agent.max_tokens,
        audience=agent.audience,
        placement=agent.placement,
        tools=list(agent.tools),
        status=agent.status,
        end_user_messages_per_minute=agent.end_user_messages_per_minute,
        end_user_messages_per_day=agent.end_user_messages_per_day,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


@router.post(
    "/agents",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentOut,
    responses=error_responses(Unauthorized, Forbidden, Conflict, InvalidField, QuotaExceeded),
)
async def create_agent(
    body: AgentCreate, principal: Writer, service: AgentServiceDep, runtimes: RuntimePlacerDep
) -> AgentOut:
    """Create an agent. Role templates fill in the persona and tools you leave out; the model defaults to
    the deployment's default (the demo model only when no provider is configured). `placement:
    "dedicated"` requests its dedicated runtime too (402 naming the plan when it allows none)."""
    agent = await service.create(principal, body.model_copy(update={"placement": Placement.SHARED}))
    if body.placement is Placement.DEDICATED:
        await runtimes.place(principal, agent.id, Placement.DEDICATED)
        agent = await service.get(principal, agent.id)  # as the placement's flush left it
    return agent_out(agent)


@router.get("/agents", response_model=AgentList, responses=error_responses(Unauthorized, Forbidden))
async def list_agents(
    principal: Reader, service: AgentServiceDep, skip: Skip = 0, limit: Limit = 50
) -> AgentList:
    """The organisation's agents, oldest first (a key limited to some agents sees only those)."""
    agents, total = await service.page(principal, skip, limit)
    return AgentList(items=[agent_out(a) for a in agents], total=total)


@router.get("/agents/{agent_id}", response_model=AgentOut, responses=error_responses(Unauthorized, NotFound))
async def get_agent(agent_id: str, principal: Reader, service: AgentServiceDep) -> AgentOut:
    """One agent."""
    return agent_out(await service.get(principal, agent_id))


@router.patch(
    "/agents/{agent_id}",
    response_model=AgentOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidField, QuotaExceeded),
)
async def update_agent(
    agent_id: str, body: AgentUpdate, principal: Writer, service: AgentServiceDep, runtimes: RuntimePlacerDep
) -> AgentOut:
    """Change an agent's settings; fields left out stay as they are. `placement: "dedicated"` requests the
    agent's dedicated runtime (402 naming the plan when it allows none, or no more); `"shared"` releases
    it."""
    agent = await service.update(principal, agent_id, body.model_copy(update={"placement": None}))
    if body.placement is not None:  # again "dedicated": an errored runtime is tried again
        await runtimes.place(principal, agent_id, body.placement)
        agent = await service.get(principal, agent_id)  # as the placement's flush left it
    return agent_out(agent)


@router.get("/agent-roles", response_model=RoleTemplateList, responses=error_responses(Unauthorized))
async def list_roles(_: Reader) -> RoleTemplateList:
    """Role templates: a starting persona and tools for common kinds of agent (any other role is allowed)."""
    return RoleTemplateList(
        items=[
            RoleTemplateOut(
                key=t.key, title=t.title, description=t.description, persona=t.persona, tools=list(t.tools)
            )
            for t in ROLE_TEMPLATES.values()
        ]
    )


@router.get("/agent-tools", response_model=ToolList, responses=error_responses(Unauthorized))
async def list_tools(principal: Reader, uow: UoWDep) -> ToolList:
    """The tools an agent can enable: the built-in ones, then the org's connected tools (each tool its MCP
    servers listed as `mcp:<server_id>:<tool>`, each webhook tool as `webhook:<id>`)."""
    builtin = [ToolOut(name=s.name, description=s.description) for s in TOOLS.specs()]
    connected = [
        ToolOut(name=t.ref, description=t.description, kind=t.kind, source=t.source)
        for t in await connected_choices(uow.session, principal.org_id)
    ]
    return ToolList(items=builtin + connected)


@router.get("/models", response_model=ModelList, responses=error_responses(Unauthorized))
async def list_models(principal: Reader, uow: UoWDep, resources: ResourcesDep) -> ModelList:
    """The model catalog. `available` is true where a key is configured (the platform's or your own)."""
    llm = resources.llm
    keys = await org_credentials(uow.session, resources.secret_box, principal.org_id)
    default = llm.default_model(keys)
    return ModelList(
        items=[
            ModelOut(
                id=spec.id,
                provider=spec.provider,
                display_name=spec.display_name,
                available=llm.available(spec.provider, keys),
                context_window=spec.context_window,
                input_usd_per_mtok=float(spec.input_usd_per_mtok),
                output_usd_per_mtok=float(spec.output_usd_per_mtok),
                is_default=spec.id == default,
                is_demo=llm.catalog.providers[spec.provider].kind is ProviderKind.DEMO,
            )
            for spec in llm.catalog.models.values()
        ]
    )


def _key_out(key: ProviderKey) -> ProviderKeyOut:
    return ProviderKeyOut(
        id=key.id, provider=key.provider, last4=key.last4, base_url=key.base_url, created_at=key.created_at
    )


def _keys(uow: UoWDep, resources: Resources) -> ProviderKeyService:
    return ProviderKeyService(uow.session, resources.settings, resources.llm, resources.secret_box)


@router.post(
    "/provider-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ProviderKeyOut,
    responses=error_responses(Unauthorized, Forbidden, InvalidField),
)
async def add_provider_key(
    body: ProviderKeyCreate, principal: OrgAdmin, uow: UoWDep, resources: ResourcesDep
) -> ProviderKeyOut:
    """Bring your own key for a provider (it replaces an earlier one). It is stored encrypted and never
    shown again, only its last four characters; your agents then use it instead of the platform's."""
    return _key_out(await _keys(uow, resources).add(principal, body))


@router.get(
    "/provider-keys", response_model=ProviderKeyList, responses=error_responses(Unauthorized, Forbidden)
)
async def list_provider_keys(principal: OrgAdmin, uow: UoWDep, resources: ResourcesDep) -> ProviderKeyList:
    """The organisation's own provider keys (never the keys themselves)."""
    return ProviderKeyList(items=[_key_out(k) for k in await _keys(uow, resources).list(principal)])


@router.delete(
    "/provider-keys/{provider_key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def delete_provider_key(
    provider_key_id: str, principal: OrgAdmin, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """Remove a provider key; agents fall back to the platform's key for that provider."""
    await _keys(uow, resources).remove(principal, provider_key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
