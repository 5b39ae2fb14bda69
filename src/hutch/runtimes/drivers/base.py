"""The interface every runtime driver offers, and what it is given to start a runtime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from hutch.runtimes.config import RuntimeConfig

Liveness = Literal["running", "dead", "missing"]


@dataclass(frozen=True)
class RuntimeSpec:
    runtime_id: str
    config: RuntimeConfig
    home: Path  # the runtime's directory on the platform side: config, workspace, logs
    cpu: float | None  # cores, from the plan; None: no limit
    memory_mb: int | None


@dataclass(frozen=True)
class RuntimeUsage:
    """What a running runtime uses now: CPU (percent of one core, so two busy cores read 200), memory,
    and how long it has been up. A driver that cannot tell a value leaves it None."""

    cpu_percent: float | None
    memory_mb: float | None
    uptime_seconds: float | None


@dataclass(frozen=True)
class Started:
    handle: str  # the driver's own id for it (a pid, a container id, an instance id)
    endpoint: str  # where the platform reaches it: http://host:port


class RuntimeDriver(Protocol):
    name: str

    async def create(self, spec: RuntimeSpec) -> Started: ...

    async def status(self, handle: str) -> Liveness: ...

    async def stop(self, handle: str) -> None: ...

    async def restart(self, spec: RuntimeSpec, handle: str) -> Started: ...

    async def destroy(self, home: Path, handle: str | None) -> None: ...

    async def logs(self, home: Path, lines: int = 200) -> str: ...

    async def usage(self, handle: str) -> RuntimeUsage | None: ...
