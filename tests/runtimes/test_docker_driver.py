"""The Docker driver through the real Docker SDK, against a local Docker Engine API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.app import create_app
from hutch.core.ids import new_id
from hutch.runtimes.config import config_json
from hutch.runtimes.drivers.base import RuntimeSpec
from hutch.runtimes.drivers.docker import DockerDriver
from hutch.runtimes.models import RuntimeHost
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import create_account
from tests.fakes.docker import FakeDockerEngine
from tests.fakes.server import free_port, wait_until
from tests.runtimes.test_runtime_server import runtime_config


@pytest.fixture(scope="module")
def engine_api() -> Iterator[FakeDockerEngine]:
    server = FakeDockerEngine()
    server.start()
    yield server
    server.reset()
    server.stop()


def spec(tmp_path: Path) -> RuntimeSpec:
    return RuntimeSpec("rt_1", runtime_config("http://127.0.0.1:9/v1"), tmp_path / "agt_dedicated1", 1.5, 512)


async def test_a_container_runs_the_runtime_with_its_config_and_limits(
    engine_api: FakeDockerEngine, tmp_path: Path
) -> None:
    engine_api.reset()
    driver = DockerDriver(engine_api.address, "hutch-runtime:latest")
    started = await driver.create(spec(tmp_path))
    assert httpx.get(f"{started.endpoint}/healthz", timeout=5).status_code == 200
    assert await driver.status(started.handle) == "running"
    container = engine_api.find(started.handle)
    assert container is not None and container.name == "hutch-runtime-agt_dedicated1"
    env = dict(item.split("=", 1) for item in container.env)
    config = json.loads(env["HUTCH_RUNTIME_CONFIG"])
    assert (
        config["agent"]["slug"] == "jarvis"
        and config["provider_keys"]["openai"]["api_key"] == "sk-org-own-key"
    )
    assert container.labels == {"hutch.runtime": "rt_1", "hutch.agent": "agt_dedicated1"}
    assert (
        container.host_config["NanoCpus"] == 1_500_000_000 and container.host_config["Memory"] == 512 * 2**20
    )
    assert container.host_config["RestartPolicy"]["Name"] == "unless-stopped"
    assert "hutch-workspace-agt_dedicated1" in engine_api.volumes
    assert "Uvicorn running" in await driver.logs(tmp_path / "agt_dedicated1")

    engine_api.crash(started.handle)
    assert await driver.status(started.handle) == "dead"
    again = await driver.restart(spec(tmp_path), started.handle)  # made anew: its config may have changed
    assert again.handle != started.handle and await driver.status(again.handle) == "running"
    assert "hutch-workspace-agt_dedicated1" in engine_api.volumes  # the workspace stays

    await driver.destroy(tmp_path / "agt_dedicated1", again.handle)
    assert await driver.status(again.handle) == "missing" and not engine_api.volumes


async def test_the_platform_provisions_on_a_docker_host(
    engine_api: FakeDockerEngine,
    settings: Settings,
    database: Any,
    database_url: str,
    session: AsyncSession,
    tmp_path: Path,
) -> None:
    engine_api.reset()
    configured = settings.model_copy(update={"data_dir": tmp_path, "runtime_local_capacity": 0})
    resources = build_test_resources(configured, database, database_url)
    session.add(
        RuntimeHost(
            id=new_id("rh"), name="docker-1", driver="docker", address=engine_api.address, max_runtimes=5
        )
    )
    await session.commit()
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents", json={"name": "Boxed", "model": "demo/echo"}, headers=owner.headers
        )
        url = f"/api/v1/agents/{agent.json()['id']}/runtime"
        assert (await client.post(url, headers=owner.headers)).json()["status"] == "provisioning"
        assert isinstance(resources.jobs, RecordingJobQueue)
        assert "ready" in await resources.jobs.run_pending()
        state = (await client.get(url, headers=owner.headers)).json()
        assert state["driver"] == "docker" and state["status"] == "ready"
        assert httpx.get(f"{state['endpoint']}/healthz", timeout=5).status_code == 200
        logs = await client.get(f"{url}/logs", headers=owner.headers)
        assert "Uvicorn running" in logs.json()["text"]

        assert (await client.delete(url, headers=owner.headers)).status_code == 202
        assert await resources.jobs.run_pending() == ["destroyed"]
        assert engine_api.containers == {}


def test_the_runtime_reads_its_config_from_the_environment(tmp_path: Path) -> None:
    """What containers get: HUTCH_RUNTIME_CONFIG instead of a file, and no copy of it left on disk."""
    port = free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        **os.environ,
        "HUTCH_RUNTIME_CONFIG": config_json(runtime_config("http://127.0.0.1:9/v1")),
        "HUTCH_DATA_DIR": str(tmp_path / "data"),
        "TMPDIR": str(scratch),
    }
    command = [
        sys.executable,
        "-m",
        "hutch.runtimes",
        "--port",
        str(port),
        "--workspace",
        str(tmp_path / "ws"),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base}/healthz"), timeout=30)
        assert httpx.get(f"{base}/healthz", timeout=5).json() == {"status": "ok", "agent": "jarvis"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in files if "sk-org-own-key" in p.read_text(errors="ignore")]  # it stayed in the env
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    unwritable = subprocess.run(
        [sys.executable, "-m", "hutch.runtimes", "--port", "1", "--workspace", str(blocked / "ws")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert unwritable.returncode == 1 and str(blocked) in unwritable.stderr
    assert "sk-org-own-key" not in unwritable.stdout + unwritable.stderr  # the config is not quoted
    no_workspace = subprocess.run(
        [sys.executable, "-m", "hutch.runtimes", "--port", "1"], env=env, capture_output=True, text=True
    )
    assert no_workspace.returncode == 2 and "--workspace" in no_workspace.stderr
    without = subprocess.run(
        [sys.executable, "-m", "hutch.runtimes", "--port", "1"],
        env={k: v for k, v in env.items() if k != "HUTCH_RUNTIME_CONFIG"},
        capture_output=True,
        text=True,
    )
    assert without.returncode == 2 and "HUTCH_RUNTIME_CONFIG" in without.stderr


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
