"""Every statement about stored responses; the caller's org (and a restricted key's agents) filter them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, delete, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.channels.openai_api.models import StoredResponse
from hutch.core.principal import Principal

MAX_CHAIN = 200  # responses read back to build a continued conversation's history


def _chain() -> Select[Any]:
    """The items of the response named ``:start`` and of those it continues, oldest first."""
    r = StoredResponse
    org: BindParameter[str] = bindparam("org_id")
    walk = (
        select(r.id, r.previous_id, r.input_items, r.output_items, literal(0).label("depth"))
        .where(r.id == bindparam("start"), r.org_id == org)
        .cte("chain", recursive=True)
    )
    walk = walk.union_all(
        select(r.id, r.previous_id, r.input_items, r.output_items, (walk.c.depth + 1).label("depth")).where(
            r.id == walk.c.previous_id, r.org_id == org, walk.c.depth < MAX_CHAIN
        )
    )
    return select(walk.c.input_items, walk.c.output_items).order_by(walk.c.depth.desc())


_CHAIN = _chain()  # built once: the compiled-statement cache finds it on every continued response


class ResponseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def readable(self, principal: Principal) -> Select[StoredResponse]:
        """The org's stored responses, narrowed to a restricted key's agents: the one tenancy filter."""
        stmt = select(StoredResponse).where(StoredResponse.org_id == principal.org_id)
        if principal.agent_ids is not None:
            stmt = stmt.where(StoredResponse.agent_id.in_(principal.agent_ids))
        return stmt

    async def get(self, principal: Principal, response_id: str) -> StoredResponse | None:
        return await self.session.scalar(self.readable(principal).where(StoredResponse.id == response_id))

    async def history_items(self, org_id: str, response_id: str) -> list[dict[str, Any]]:
        """The items of the chain ending with ``response_id``, oldest first: each response's input, then its
        output. One statement, however long the chain."""
        items: list[dict[str, Any]] = []
        for input_items, output_items in await self.session.execute(
            _CHAIN, {"start": response_id, "org_id": org_id}
        ):
            items += input_items
            items += output_items
        return items

    async def add(self, record: StoredResponse) -> None:
        self.session.add(record)
        await self.session.flush()

    async def delete(self, principal: Principal, response_id: str) -> bool:
        """Delete the caller's response; False when there is none by that id."""
        found = await self.get(principal, response_id)
        if found is None:
            return False
        await self.session.execute(delete(StoredResponse).where(StoredResponse.id == found.id))
        return True
