"""The hosts dedicated runtimes go to, as platform admins manage them: add, pause, resume, remove.

A paused host keeps the runtimes it holds and takes no new one; a host is removed only once it holds none,
and this machine (``local``, the process driver's host) is paused rather than removed: the next dedicated
runtime would register it again. Every change is in the audit log with the admin and the address.
"""

from __future__ import annotations

from dataclasses import dataclass

from hutch.audit.service import record_audit
from hutch.core.errors import Conflict, NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.runtimes.models import RuntimeHost
from hutch.runtimes.repository import RuntimeHostRepository
from hutch.runtimes.service import LOCAL_HOST

REMOTE_DRIVERS = ("docker", "ec2")


@dataclass(frozen=True)
class NewHost:
    name: str
    driver: str  # docker | ec2
    address: str  # docker: unix://, tcp:// or ssh:// address of the engine; ec2: the region
    max_runtimes: int
    hourly_cost_cents: int = 0


class RuntimeHosts:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session
        self.hosts = RuntimeHostRepository(uow.session)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> RuntimeHosts:
        return cls(uow)

    async def list(self) -> list[tuple[RuntimeHost, int]]:
        """Every host, by name, with how many runtimes it holds."""
        return await self.hosts.with_counts()

    async def get(self, host_id: str, *, lock: bool = False) -> RuntimeHost:
        host = await self.hosts.get(host_id, lock=lock)
        if host is None:
            raise NotFound("Runtime host")
        return host

    async def held(self, host_id: str) -> int:
        return await self.hosts.runtimes_on(host_id)

    async def add(self, new: NewHost, admin: Principal, ip: str | None) -> RuntimeHost:
        if new.driver not in REMOTE_DRIVERS:
            raise Conflict(f'Unknown driver "{new.driver}"; use "docker" or "ec2".')
        if await self.hosts.named(new.name) is not None:
            raise Conflict(f"A runtime host is already named {new.name}.")
        host = RuntimeHost(
            id=new_id("rh"),
            name=new.name,
            driver=new.driver,
            address=new.address,
            max_runtimes=new.max_runtimes,
            hourly_cost_cents=new.hourly_cost_cents,
            enabled=True,
        )
        self.session.add(host)
        await self.session.flush()
        await self._audit(
            "runtime_host_added",
            admin,
            ip,
            host,
            {"driver": host.driver, "address": host.address, "max_runtimes": host.max_runtimes},
        )
        return host

    async def set_enabled(self, host_id: str, enabled: bool, admin: Principal, ip: str | None) -> RuntimeHost:
        """Pause a host (it takes no new runtime; those it holds keep running) or let it take them again."""
        host = await self.get(host_id, lock=True)
        if host.enabled == enabled:
            raise Conflict(f"This host is already {'taking runtimes' if enabled else 'paused'}.")
        host.enabled = enabled
        await self.session.flush()
        await self._audit("runtime_host_resumed" if enabled else "runtime_host_paused", admin, ip, host)
        return host

    async def remove(self, host_id: str, admin: Principal, ip: str | None) -> None:
        host = await self.get(host_id, lock=True)
        if host.name == LOCAL_HOST:
            raise Conflict("This machine's host cannot be removed; pause it instead.")
        held = await self.hosts.runtimes_on(host.id)
        if held:
            raise Conflict(
                f"This host still holds {held} runtime(s); pause it and move or remove them first."
            )
        await self._audit("runtime_host_removed", admin, ip, host)
        await self.session.delete(host)
        await self.session.flush()

    async def _audit(
        self,
        action: str,
        admin: Principal,
        ip: str | None,
        host: RuntimeHost,
        details: dict[str, object] | None = None,
    ) -> None:
        await record_audit(
            self.session,
            action=action,
            actor_user_id=admin.user_id,
            target=host.id,
            ip=ip,
            details={"name": host.name, **(details or {})},
        )
