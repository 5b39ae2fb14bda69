"""Runtimes as Docker containers, through the Docker SDK: a local socket, ``tcp://`` or ``ssh://`` hosts.

The container runs the runtime image (``HUTCH_RUNTIME_IMAGE``, built from ``deploy/runtime.Dockerfile``)
with the agent's config in its environment (a remote host has none of Hutch's files), its workspace in a
named volume (``hutch-workspace-<agent>``, kept across re-provisioning), the plan's CPU and memory as
container limits, and labels naming the runtime and agent. Docker restarts it if it dies; the health job
re-provisions it if it stops answering.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
from docker.errors import DockerException, NotFound

from hutch.runtimes.config import config_json
from hutch.runtimes.drivers.base import Liveness, RuntimeSpec, RuntimeUsage, Started

RUNTIME_PORT = 8000
API_VERSION = "1.45"
STOP_SECONDS = 5


def workspace_volume(agent_id: str) -> str:
    return f"hutch-workspace-{agent_id}"


def container_name(agent_id: str) -> str:
    return f"hutch-runtime-{agent_id}"


class DockerDriver:
    name = "docker"

    def __init__(self, address: str, image: str) -> None:
        """``address``: ``unix:///var/run/docker.sock``, ``tcp://host:2375`` or ``ssh://user@host``."""
        self.address = address
        self.image = image
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.DockerClient(
                base_url=self.address, version=API_VERSION, use_ssh_client=self.address.startswith("ssh://")
            )
        return self._client

    @property
    def reachable_host(self) -> str:
        """Where the platform reaches published ports: the Docker host itself."""
        return urlsplit(self.address).hostname or "127.0.0.1" if "://" in self.address else "127.0.0.1"

    async def create(self, spec: RuntimeSpec) -> Started:
        return await asyncio.to_thread(self._create, spec)

    def _create(self, spec: RuntimeSpec) -> Started:
        agent_id = spec.config.agent.id
        self._remove(container_name(agent_id))  # a leftover of an earlier attempt
        container = self.client.containers.run(
            self.image,
            detach=True,
            name=container_name(agent_id),
            environment={"HUTCH_RUNTIME_CONFIG": config_json(spec.config)},
            labels={"hutch.runtime": spec.runtime_id, "hutch.agent": agent_id},
            ports={f"{RUNTIME_PORT}/tcp": None},  # a free port on the host
            volumes={workspace_volume(agent_id): {"bind": "/workspace", "mode": "rw"}},
            nano_cpus=int(spec.cpu * 1e9) if spec.cpu else None,
            mem_limit=f"{spec.memory_mb}m" if spec.memory_mb else None,
            restart_policy={"Name": "unless-stopped"},
        )
        container.reload()
        binding = container.attrs["NetworkSettings"]["Ports"][f"{RUNTIME_PORT}/tcp"][0]
        return Started(container.id, f"http://{self.reachable_host}:{binding['HostPort']}")

    async def status(self, handle: str) -> Liveness:
        return await asyncio.to_thread(self._status, handle)

    def _status(self, handle: str) -> Liveness:
        try:
            state: dict[str, Any] = self.client.containers.get(handle).attrs["State"]
        except NotFound:
            return "missing"
        return "running" if state.get("Running") else "dead"

    async def stop(self, handle: str) -> None:
        await asyncio.to_thread(self._stop, handle)

    def _stop(self, handle: str) -> None:
        try:
            self.client.containers.get(handle).stop(timeout=STOP_SECONDS)
        except NotFound:
            return

    async def restart(self, spec: RuntimeSpec, handle: str) -> Started:
        # Created again rather than restarted: the config in its environment may have changed.
        return await self.create(spec)

    async def destroy(self, home: Path, handle: str | None) -> None:
        agent_id = home.name
        await asyncio.to_thread(self._destroy, agent_id)

    def _destroy(self, agent_id: str) -> None:
        self._remove(container_name(agent_id))
        try:
            self.client.volumes.get(workspace_volume(agent_id)).remove(force=True)
        except NotFound:
            return

    def _remove(self, name: str) -> None:
        try:
            self.client.containers.get(name).remove(force=True)
        except NotFound:
            return

    async def logs(self, home: Path, lines: int = 200) -> str:
        return await asyncio.to_thread(self._logs, home.name, lines)

    async def usage(self, handle: str) -> RuntimeUsage | None:
        """The container's CPU and memory (Docker's stats, one reading) and how long it has run."""
        return await asyncio.to_thread(self._usage, handle)

    def _usage(self, handle: str) -> RuntimeUsage | None:
        try:
            container = self.client.containers.get(handle)
            stats: dict[str, Any] = container.stats(stream=False)
        except (NotFound, DockerException):
            return None
        return container_usage(stats, container.attrs.get("State", {}).get("StartedAt"))

    def _logs(self, agent_id: str, lines: int) -> str:
        try:
            raw: bytes = self.client.containers.get(container_name(agent_id)).logs(tail=lines)
        except (NotFound, DockerException):
            return ""
        return raw.decode(errors="replace")


def container_usage(stats: dict[str, Any], started_at: str | None) -> RuntimeUsage:
    """Docker's stats as ``docker stats`` shows them: CPU from the two readings it carries (percent of one
    core), memory without the page cache."""
    cpu_stats, before = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    used = (cpu_stats.get("cpu_usage") or {}).get("total_usage", 0) - (before.get("cpu_usage") or {}).get(
        "total_usage", 0
    )
    system = cpu_stats.get("system_cpu_usage", 0) - before.get("system_cpu_usage", 0)
    cores = cpu_stats.get("online_cpus") or len((cpu_stats.get("cpu_usage") or {}).get("percpu_usage") or [1])
    cpu = round(used / system * cores * 100, 1) if used > 0 and system > 0 else 0.0
    memory = stats.get("memory_stats") or {}
    cache = (memory.get("stats") or {}).get("inactive_file", 0)
    memory_mb = round((memory["usage"] - cache) / 1024 / 1024, 1) if "usage" in memory else None
    uptime = None
    if started_at and not started_at.startswith("0001"):
        started = datetime.fromisoformat(started_at[:26].rstrip("Z") + "+00:00")
        uptime = round((datetime.now(UTC) - started).total_seconds(), 1)
    return RuntimeUsage(cpu, memory_mb, uptime)
