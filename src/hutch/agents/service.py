"""The rules of agents and provider keys: defaults from role templates, valid models and tools, slugs."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent, AgentStatus, Placement, ProviderKey
from hutch.agents.repository import AgentRepository, EncryptedKey, ProviderKeyRepository
from hutch.agents.roles import role_template
from hutch.agents.schemas import AgentCreate, AgentUpdate, ProviderKeyCreate
from hutch.audit.service import record_audit
from hutch.billing.plans import LimitName, PlanCatalog
from hutch.billing.quotas import Quotas
from hutch.core.errors import Conflict, Forbidden, InvalidField, NotFound, QuotaExceeded
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.security import SecretBox
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.engine.browser_tools import BROWSER
from hutch.engine.catalog import Credentials, ProviderKind
from hutch.engine.gateway import LLMGateway
from hutch.engine.tools import TOOLS
from hutch.i18n import N_, Wording
from hutch.integrations.tools import is_connected, unknown_connected
from hutch.settings import Settings

GENERIC_PERSONA = "You are a helpful assistant. Answer clearly and briefly, and say so when you do not know."
SLUG_ATTEMPTS = 20
# Columns that cannot be empty: null in a PATCH leaves them unchanged.
REQUIRED_FIELDS = frozenset(
    {"name", "role", "system_prompt", "model", "temperature", "max_tokens", "audience", "placement", "status"}
)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48].strip("-")
    return slug or "agent"


async def org_credentials(
    session: AsyncSession, secret_box: SecretBox, org_id: str
) -> dict[str, Credentials]:
    """The org's own provider keys, decrypted for one call."""
    return decrypted(secret_box, await ProviderKeyRepository(session).encrypted_keys(org_id))


def decrypted(secret_box: SecretBox, keys: list[EncryptedKey]) -> dict[str, Credentials]:
    return {provider: Credentials(secret_box.decrypt(key), base_url) for provider, key, base_url in keys}


class RuntimePlacer(Protocol):
    """Dedicated runtimes (``hutch.runtimes``, which builds on agents), as an agent's placement needs them."""

    async def place(self, principal: Principal, agent_id: str, placement: Placement) -> None:
        """``dedicated`` requests the agent's runtime (402 over the plan), ``shared`` releases it."""
        ...


class AgentService:
    def __init__(
        self, session: AsyncSession, llm: LLMGateway, secret_box: SecretBox, plans: PlanCatalog
    ) -> None:
        self.session = session
        self.llm = llm
        self.secret_box = secret_box
        self.agents = AgentRepository(session)
        self.quotas = Quotas(session, plans)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> AgentService:
        """The service for a request, a page or a job, from what the process built."""
        return cls(uow.session, resources.llm, resources.secret_box, resources.plans)

    async def page(self, principal: Principal, skip: int, limit: int) -> tuple[list[Agent], int]:
        return await self.agents.page(principal, skip, limit)

    async def get(self, principal: Principal, agent_id: str, *, for_update: bool = False) -> Agent:
        agent = await self.agents.get(principal, agent_id, for_update=for_update)
        if agent is None:
            raise NotFound("Agent")
        return agent

    async def create(self, principal: Principal, data: AgentCreate) -> Agent:
        if principal.agent_ids is not None:
            raise Forbidden("This API key is limited to some agents and cannot create new ones.")
        template = role_template(data.role)
        model = data.model or self.llm.default_model(await self._org_keys(principal.org_id))
        self._check_model("model", model)
        if data.fallback_model is not None:
            self._check_model("fallback_model", data.fallback_model)
        tools = list(
            dict.fromkeys(data.tools if data.tools is not None else (template.tools if template else ()))
        )
        await self._check_tools(principal.org_id, tools)
        await self._check_per_person(
            principal.org_id, data.end_user_messages_per_minute, data.end_user_messages_per_day
        )
        await self.quotas.check_count(
            principal.org_id, "agents", lambda: self.agents.count_in_org(principal.org_id)
        )
        agent = Agent(
            id=new_id("agt"),
            org_id=principal.org_id,
            slug="",
            name=data.name,
            role=data.role,
            system_prompt=data.system_prompt
            if data.system_prompt is not None
            else (template.persona if template else GENERIC_PERSONA),
            model=model,
            fallback_model=data.fallback_model,
            temperature=data.temperature,
            max_tokens=data.max_tokens,
            audience=data.audience,
            placement=data.placement,
            tools=tools,
            status=data.status,
            end_user_messages_per_minute=data.end_user_messages_per_minute,
            end_user_messages_per_day=data.end_user_messages_per_day,
        )
        await self._insert_with_slug(agent, data.slug)
        await record_audit(
            self.session,
            action="agent_created",
            org_id=principal.org_id,
            actor_user_id=principal.user_id,
            actor_api_key_id=principal.api_key_id,
            target=agent.id,
        )
        return agent

    async def update(self, principal: Principal, agent_id: str, data: AgentUpdate) -> Agent:
        agent = await self.get(principal, agent_id, for_update=True)
        changes = data.model_dump(exclude_unset=True)
        for field in REQUIRED_FIELDS:
            if changes.get(field) is None:
                changes.pop(field, None)  # null means "unchanged" for required fields
        if "model" in changes:
            self._check_model("model", changes["model"])
        if changes.get("fallback_model") is not None:
            self._check_model("fallback_model", changes["fallback_model"])
        if "tools" in changes:
            changes["tools"] = list(dict.fromkeys(changes["tools"] or []))
            await self._check_tools(agent.org_id, changes["tools"], kept=agent.tools)
        if changes.get("end_user_messages_per_minute") or changes.get("end_user_messages_per_day"):
            await self._check_per_person(
                agent.org_id,
                changes.get("end_user_messages_per_minute"),
                changes.get("end_user_messages_per_day"),
            )
        if changes.get("slug") is not None and changes["slug"] != agent.slug:
            if await self.agents.slug_taken(agent.org_id, changes["slug"], except_id=agent.id):
                raise Conflict(f"Another agent already uses the slug {changes['slug']!r}.")
        elif "slug" in changes:
            changes.pop("slug")
        for field, value in changes.items():
            setattr(agent, field, value)
        await self.session.flush()
        # The database set updated_at; load it now, as async sessions cannot load it lazily later.
        await self.session.refresh(agent, ["updated_at"])
        return agent

    async def delete(self, principal: Principal, agent_id: str) -> None:
        agent = await self.get(principal, agent_id, for_update=True)
        await self.session.delete(agent)
        await record_audit(
            self.session,
            action="agent_deleted",
            org_id=principal.org_id,
            actor_user_id=principal.user_id,
            actor_api_key_id=principal.api_key_id,
            target=agent.id,
            details={"name": agent.name},
        )

    async def set_status(self, principal: Principal, agent_id: str, status: AgentStatus) -> Agent:
        agent = await self.get(principal, agent_id, for_update=True)
        agent.status = status
        return agent

    async def _check_per_person(self, org_id: str, per_minute: int | None, per_day: int | None) -> None:
        """An agent's per-person limits may be stricter than the plan's, never looser (422 naming the plan's
        value); a plan without one allows any."""
        plan = await self.quotas.plan_of(org_id)
        fields: tuple[tuple[LimitName, int | None], ...] = (
            ("end_user_messages_per_minute", per_minute),
            ("end_user_messages_per_day", per_day),
        )
        for field, value in fields:
            allowed = plan.limit(field)
            if value is not None and allowed is not None and value > allowed:
                message = N_("the {plan} plan allows at most {allowed}; choose {allowed} or fewer")
                raise InvalidField(field, Wording(message, plan=plan.name, allowed=allowed))

    def _check_model(self, field: str, model: str) -> None:
        if self.llm.catalog.find(model) is None:
            raise InvalidField(field, f"unknown model {model!r}; GET /api/v1/models lists them")

    async def _check_tools(self, org_id: str, tools: list[str], kept: list[str] | None = None) -> None:
        unknown = TOOLS.unknown([name for name in tools if not is_connected(name)])
        if unknown:
            known = ", ".join(s.name for s in TOOLS.specs())
            raise InvalidField("tools", f"unknown tool(s) {', '.join(unknown)}; available: {known}")
        # A tool the agent already has stays, so editing it still works after the operator turns one off
        # (or after its MCP server stops listing it).
        added = [name for name in tools if name not in (kept or [])]
        # Connected tools: the org's own MCP servers' listed tools and webhook tools; another org's ids are
        # as unknown as ids that never existed.
        unknown = await unknown_connected(self.session, org_id, [n for n in added if is_connected(n)])
        if unknown:
            raise InvalidField(
                "tools",
                f"unknown connected tool(s) {', '.join(unknown)}; GET /api/v1/agent-tools lists the org's",
            )
        unavailable = TOOLS.unavailable(added, self.llm.settings)
        if unavailable:
            raise InvalidField("tools", "; ".join(unavailable))
        if BROWSER in added:
            plan = await self.quotas.plan_of(org_id)
            if not plan.limits.browser:  # refused here, not only left out at turn time
                raise QuotaExceeded(
                    "browser",
                    plan.name,
                    f"The {plan.name} plan does not include the browser; upgrade the plan to use it.",
                )

    async def _org_keys(self, org_id: str) -> dict[str, Credentials]:
        return await org_credentials(self.session, self.secret_box, org_id)

    async def _insert_with_slug(self, agent: Agent, wanted: str | None) -> None:
        """Insert with the wanted slug (409 if taken) or one derived from the name, made unique."""
        if wanted is not None:
            if await self.agents.slug_taken(agent.org_id, wanted):
                raise Conflict(f"Another agent already uses the slug {wanted!r}.")
            candidates = [wanted]
        else:
            base = slugify(agent.name)
            taken = await self.agents.slugs_like(agent.org_id, base)
            candidates = [s for s in [base, *(f"{base}-{n}" for n in range(2, 1000))] if s not in taken]
        for slug in candidates[:SLUG_ATTEMPTS]:
            agent.slug = slug
            try:
                async with self.session.begin_nested():  # a concurrent create may take the slug first
                    self.session.add(agent)
                    await self.session.flush()
                return
            except IntegrityError:
                if wanted is not None:
                    raise Conflict(f"Another agent already uses the slug {wanted!r}.") from None
        raise Conflict("Could not find a free slug for this agent; give one explicitly.")


class ProviderKeyService:
    def __init__(
        self, session: AsyncSession, settings: Settings, llm: LLMGateway, secret_box: SecretBox
    ) -> None:
        self.session = session
        self.settings = settings
        self.llm = llm
        self.secret_box = secret_box
        self.keys = ProviderKeyRepository(session)

    async def add(self, principal: Principal, data: ProviderKeyCreate) -> ProviderKey:
        """Store (or replace) the org's key for a provider, encrypted; only its last four characters show."""
        spec = self.llm.catalog.providers.get(data.provider)
        if spec is None or spec.kind is ProviderKind.DEMO:
            names = ", ".join(
                n for n, p in self.llm.catalog.providers.items() if p.kind is not ProviderKind.DEMO
            )
            raise InvalidField("provider", f"unknown provider {data.provider!r}; one of: {names}")
        if data.base_url is None and spec.base_url is None:
            raise InvalidField("base_url", f"{spec.display_name} needs the base URL of your endpoint")
        if data.base_url is not None:
            await self._check_base_url(data.base_url)
        api_key = data.api_key.strip()
        existing = await self.keys.for_provider(principal.org_id, data.provider)
        if existing is not None:
            await self.session.delete(existing)
            await self.session.flush()
        key = ProviderKey(
            id=new_id("pk"),
            org_id=principal.org_id,
            provider=data.provider,
            api_key_encrypted=self.secret_box.encrypt(api_key),
            last4=api_key[-4:],
            base_url=data.base_url,
        )
        self.session.add(key)
        await self.session.flush()
        await self.session.refresh(key)
        await record_audit(
            self.session,
            action="provider_key_added",
            org_id=principal.org_id,
            actor_user_id=principal.user_id,
            target=data.provider,
        )
        return key

    async def list(self, principal: Principal) -> list[ProviderKey]:
        return await self.keys.of_org(principal.org_id)

    async def remove(self, principal: Principal, key_id: str) -> None:
        key = await self.keys.get(principal.org_id, key_id)
        if key is None:
            raise NotFound("Provider key")
        await self.session.delete(key)
        await record_audit(
            self.session,
            action="provider_key_removed",
            org_id=principal.org_id,
            actor_user_id=principal.user_id,
            target=key.provider,
        )

    async def _check_base_url(self, url: str) -> None:
        """Hutch will send requests there: refuse private and loopback addresses unless allowed."""
        host = urlsplit(url).hostname
        if not host:
            raise InvalidField("base_url", "must be an http(s) URL with a host name")
        if self.settings.provider_urls_allow_private:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            raise InvalidField("base_url", f"the host {host!r} does not resolve") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise InvalidField("base_url", f"the host {host!r} is a private or local address")
