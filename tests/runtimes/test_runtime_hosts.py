"""Runtime hosts through the admin API: listed, added, paused and resumed, removed, each change audited."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.audit.models import AuditEntry
from hutch.core.ids import new_id
from hutch.runtimes.models import Runtime, RuntimeHost, RuntimeStatus
from hutch.settings import Settings
from tests.factories import create_account

DOCKER = {"name": "docker-1", "driver": "docker", "address": "tcp://10.0.0.5:2375", "max_runtimes": 4}


async def test_admins_add_pause_resume_and_remove_hosts_and_every_change_is_audited(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_account(session, settings, platform_admin=True)
    added = await client.post(
        "/api/v1/admin/runtime-hosts", json={**DOCKER, "hourly_cost_cents": 12}, headers=admin.headers
    )
    assert added.status_code == 201, added.text
    host = added.json()
    assert host["enabled"] is True and host["runtimes"] == 0 and host["hourly_cost_cents"] == 12
    again = await client.post("/api/v1/admin/runtime-hosts", json=DOCKER, headers=admin.headers)
    assert again.status_code == 409 and "already named docker-1" in again.json()["detail"]

    listed = (await client.get("/api/v1/admin/runtime-hosts", headers=admin.headers)).json()
    assert [h["name"] for h in listed["items"]] == ["docker-1"] and listed["total"] == 1

    paused = await client.post(f"/api/v1/admin/runtime-hosts/{host['id']}/pause", headers=admin.headers)
    assert paused.status_code == 200 and paused.json()["enabled"] is False
    twice = await client.post(f"/api/v1/admin/runtime-hosts/{host['id']}/pause", headers=admin.headers)
    assert twice.status_code == 409
    resumed = await client.post(f"/api/v1/admin/runtime-hosts/{host['id']}/resume", headers=admin.headers)
    assert resumed.status_code == 200 and resumed.json()["enabled"] is True

    removed = await client.delete(f"/api/v1/admin/runtime-hosts/{host['id']}", headers=admin.headers)
    assert removed.status_code == 204
    assert await session.get(RuntimeHost, host["id"]) is None
    gone = await client.post(f"/api/v1/admin/runtime-hosts/{host['id']}/pause", headers=admin.headers)
    assert gone.status_code == 404

    entries = (
        await session.scalars(
            select(AuditEntry).where(AuditEntry.target == host["id"]).order_by(AuditEntry.id)
        )
    ).all()
    assert [e.action for e in entries] == [
        "runtime_host_added",
        "runtime_host_paused",
        "runtime_host_resumed",
        "runtime_host_removed",
    ]
    assert {e.actor_user_id for e in entries} == {admin.user.id}
    assert entries[0].details["address"] == "tcp://10.0.0.5:2375"


async def test_a_host_holding_runtimes_or_this_machine_is_not_removed(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_account(session, settings, platform_admin=True)
    owner = await create_account(session, settings)
    agent = (await client.post("/api/v1/agents", json={"name": "Busy"}, headers=owner.headers)).json()
    host = (await client.post("/api/v1/admin/runtime-hosts", json=DOCKER, headers=admin.headers)).json()
    session.add(
        Runtime(
            id=new_id("rt"),
            org_id=owner.org.id,
            agent_id=agent["id"],
            host_id=host["id"],
            driver="docker",
            status=RuntimeStatus.READY,
            gateway_token_encrypted="x",
            attempts=0,
        )
    )
    await session.commit()
    held = await client.delete(f"/api/v1/admin/runtime-hosts/{host['id']}", headers=admin.headers)
    assert held.status_code == 409 and "1 runtime" in held.json()["detail"]

    local = RuntimeHost(id=new_id("rh"), name="local", driver="process", address="", max_runtimes=2)
    session.add(local)
    await session.commit()
    refused = await client.delete(f"/api/v1/admin/runtime-hosts/{local.id}", headers=admin.headers)
    assert refused.status_code == 409 and "pause it instead" in refused.json()["detail"]
    paused = await client.post(f"/api/v1/admin/runtime-hosts/{local.id}/pause", headers=admin.headers)
    assert paused.status_code == 200 and paused.json()["enabled"] is False


async def test_unknown_drivers_and_members_are_refused(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_account(session, settings, platform_admin=True)
    member = await create_account(session, settings)
    wrong = await client.post(
        "/api/v1/admin/runtime-hosts", json={**DOCKER, "driver": "process"}, headers=admin.headers
    )
    assert wrong.status_code == 422
    assert (await client.get("/api/v1/admin/runtime-hosts", headers=member.headers)).status_code == 403
    refused = await client.post("/api/v1/admin/runtime-hosts", json=DOCKER, headers=member.headers)
    assert refused.status_code == 403
    assert (await session.scalars(select(RuntimeHost).where(RuntimeHost.name == "docker-1"))).first() is None
