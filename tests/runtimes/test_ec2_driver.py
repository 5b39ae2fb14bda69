"""The EC2 driver with the real boto3 against moto's EC2 server, and real SSH (asyncssh) to a local server
standing in for the instance."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import boto3
import pytest
from moto.server import ThreadedMotoServer

from hutch.runtimes.drivers.base import RuntimeSpec
from hutch.runtimes.drivers.ec2 import CONFIG_PATH, Ec2Driver, instance_type
from hutch.settings import Settings
from tests.runtimes.test_runtime_server import runtime_config

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return moto_endpoint


@dataclass
class FakeMachine:
    """What the runtime's machine was told over SSH: (command, stdin) pairs."""

    commands: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0


@pytest.fixture
async def machine(tmp_path: Path) -> AsyncIterator[tuple[FakeMachine, Path]]:
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    client_key.write_private_key(str(key_file))
    seen = FakeMachine()

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command or ""
        stdin = await process.stdin.read() if "tee" in command else ""
        seen.commands.append((command, stdin))
        if "journalctl" in command:
            process.stdout.write("Nov 30 hutch-runtime: Uvicorn running on http://0.0.0.0:8000\n")
        process.exit(0)

    server = await asyncssh.create_server(
        asyncssh.SSHServer,
        "127.0.0.1",
        0,
        server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
        authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
        process_factory=handle,
    )
    seen.port = server.sockets[0].getsockname()[1]
    yield seen, key_file
    server.close()
    await server.wait_closed()


def ec2_settings(settings: Settings, endpoint: str, key_file: Path | None = None) -> Settings:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return settings.model_copy(
        update={
            "aws_endpoint_url": endpoint,
            "runtime_ec2_ami": ami,
            "runtime_ec2_disk_gb": 30,
            "runtime_ssh_key_file": key_file,
            "runtime_pip_spec": "hutch==0.1.0",
        }
    )


def spec(memory_mb: int | None = 3000) -> RuntimeSpec:
    return RuntimeSpec(
        "rt_9", runtime_config("http://127.0.0.1:9/v1"), Path("/x/agt_dedicated1"), 2, memory_mb
    )


async def test_an_instance_is_started_with_the_runtime_and_later_terminated(
    aws: str, settings: Settings, machine: tuple[FakeMachine, Path]
) -> None:
    seen, key_file = machine
    configured = ec2_settings(settings, aws, key_file)
    driver = Ec2Driver(REGION, configured, ssh_port=seen.port, ssh_address=lambda ip: "127.0.0.1")
    started = await driver.create(spec())
    assert started.handle.startswith("i-") and started.endpoint.endswith(":8000")
    assert await driver.status(started.handle) == "running"

    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=aws)
    instance = ec2.describe_instances(InstanceIds=[started.handle])["Reservations"][0]["Instances"][0]
    assert instance["InstanceType"] == "t3.medium"  # 3,000 MB of plan memory
    assert instance["ImageId"] == configured.runtime_ec2_ami
    assert {t["Key"]: t["Value"] for t in instance["Tags"]} == {
        "Name": "hutch-runtime-agt_dedicated1",
        "hutch:runtime": "rt_9",
        "hutch:agent": "agt_dedicated1",
    }
    script = base64.b64decode(
        ec2.describe_instance_attribute(InstanceId=started.handle, Attribute="userData")["UserData"]["Value"]
    ).decode()
    assert "pip install -q 'hutch==0.1.0'" in script and "systemctl enable --now hutch-runtime" in script
    assert '"slug": "jarvis"' in script and CONFIG_PATH in script
    assert "apt-get install -y -q chromium" in script  # the agent's browser
    volume = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [started.handle]}])[
        "Volumes"
    ][0]
    assert volume["Size"] == 30

    await driver.stop(started.handle)
    assert await driver.status(started.handle) == "dead"  # stopped: the disk and workspace stay
    changed = RuntimeSpec(
        "rt_9", runtime_config("http://127.0.0.1:9/v1", system_prompt="Be brief."), spec().home, 2, 3000
    )
    again = await driver.restart(changed, started.handle)
    assert again.handle == started.handle and await driver.status(again.handle) == "running"
    [(tee, config), (restart, _)] = seen.commands
    assert (
        tee == f"sudo tee {CONFIG_PATH} > /dev/null"
        and json.loads(config)["agent"]["system_prompt"] == "Be brief."
    )
    assert restart == "sudo systemctl restart hutch-runtime"
    assert "Uvicorn running" in await driver.logs(spec().home)

    await driver.destroy(spec().home, None)  # found by its tag
    assert await driver.status(started.handle) == "missing"


def test_instance_types_follow_the_plan(settings: Settings) -> None:
    assert instance_type(settings, None) == settings.runtime_ec2_instance_type
    assert [instance_type(settings, mb) for mb in (512, 2048, 4096, 8000, 64000)] == [
        "t3.small",
        "t3.small",
        "t3.medium",
        "t3.large",
        "t3.xlarge",
    ]


async def test_without_an_image_it_says_what_to_set(aws: str, settings: Settings) -> None:
    driver = Ec2Driver(REGION, settings.model_copy(update={"aws_endpoint_url": aws}))
    with pytest.raises(RuntimeError, match="HUTCH_RUNTIME_EC2_AMI"):
        await driver.create(spec())
