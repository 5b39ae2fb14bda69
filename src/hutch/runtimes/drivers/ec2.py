"""Runtimes on their own EC2 machines, through boto3; commands on them over SSH with asyncssh.

A runtime is one instance (tagged ``hutch:runtime`` and ``hutch:agent``) started from
``HUTCH_RUNTIME_EC2_AMI`` (an Ubuntu image), whose user data installs Hutch, writes the agent's config and
runs the runtime as the ``hutch-runtime`` systemd service on port 8000. The instance type comes from the
plan's memory (or ``HUTCH_RUNTIME_EC2_INSTANCE_TYPE``), the disk from ``HUTCH_RUNTIME_EC2_DISK_GB``. The
workspace lives on that disk: stopping keeps it, and a re-provisioned runtime gets its new config over SSH
and a service restart instead of a new machine. Removing terminates the instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import boto3
from botocore.exceptions import BotoCoreError, ClientError

from hutch.runtimes.config import config_json
from hutch.runtimes.drivers.base import Liveness, RuntimeSpec, RuntimeUsage, Started
from hutch.settings import Settings

RUNTIME_PORT = 8000
CONFIG_PATH = "/etc/hutch/agent.json"
SERVICE = "hutch-runtime"
# By the plan's memory: the smallest general-purpose type that holds it; without a limit, the setting's.
SIZES = [(2048, "t3.small"), (4096, "t3.medium"), (8192, "t3.large"), (16384, "t3.xlarge")]


def instance_type(settings: Settings, memory_mb: int | None) -> str:
    if not memory_mb:
        return settings.runtime_ec2_instance_type
    return next((kind for limit, kind in SIZES if memory_mb <= limit), SIZES[-1][1])


def user_data(spec: RuntimeSpec, pip_spec: str) -> str:
    """The first-boot script: install Hutch, write the config, run the runtime as a service."""
    return f"""#!/bin/bash
set -euo pipefail
apt-get update -q && apt-get install -y -q python3-venv
# The agent's browser: Chromium from the distribution (Debian's "chromium"; without it, no browser).
apt-get install -y -q chromium fonts-liberation || echo "no chromium package: the agent has no browser" >&2
python3 -m venv /opt/hutch && /opt/hutch/bin/pip install -q '{pip_spec}'
useradd --system --create-home hutch || true
install -d -o hutch -m 700 /etc/hutch /var/lib/hutch/workspace
cat > {CONFIG_PATH} <<'HUTCH_CONFIG'
{config_json(spec.config)}
HUTCH_CONFIG
chown hutch {CONFIG_PATH} && chmod 600 {CONFIG_PATH}
cat > /etc/systemd/system/{SERVICE}.service <<'HUTCH_UNIT'
[Unit]
Description=Hutch dedicated runtime
After=network-online.target
[Service]
User=hutch
Environment=HUTCH_DATA_DIR=/var/lib/hutch/data
ExecStart=/opt/hutch/bin/python -m hutch.runtimes --agent-config {CONFIG_PATH} --port {RUNTIME_PORT} --host 0.0.0.0 --workspace /var/lib/hutch/workspace
Restart=always
[Install]
WantedBy=multi-user.target
HUTCH_UNIT
systemctl daemon-reload && systemctl enable --now {SERVICE}
"""  # noqa: E501 - a unit file line is one line


class Ec2Driver:
    name = "ec2"

    def __init__(
        self,
        region: str,
        settings: Settings,
        *,
        ssh_port: int = 22,
        ssh_address: Callable[[str], str] = lambda ip: ip,
    ) -> None:
        self.settings = settings
        self.ec2: Any = boto3.client(
            "ec2", region_name=region, endpoint_url=settings.aws_endpoint_url or None
        )
        self.ssh_port = ssh_port
        self.ssh_address = ssh_address  # where to reach an instance's SSH (its public IP by default)

    # --- EC2 -----------------------------------------------------------------------------------------

    async def create(self, spec: RuntimeSpec) -> Started:
        return await asyncio.to_thread(self._create, spec)

    def _create(self, spec: RuntimeSpec) -> Started:
        s = self.settings
        if not s.runtime_ec2_ami:
            raise RuntimeError("Set HUTCH_RUNTIME_EC2_AMI (an Ubuntu image) to run runtimes on EC2.")
        agent_id = spec.config.agent.id
        options: dict[str, Any] = {
            "ImageId": s.runtime_ec2_ami,
            "InstanceType": instance_type(s, spec.memory_mb),
            "MinCount": 1,
            "MaxCount": 1,
            "UserData": user_data(spec, s.runtime_pip_spec),
            "BlockDeviceMappings": [
                {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": s.runtime_ec2_disk_gb, "VolumeType": "gp3"}}
            ],
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": "Name", "Value": f"hutch-runtime-{agent_id}"},
                        {"Key": "hutch:runtime", "Value": spec.runtime_id},
                        {"Key": "hutch:agent", "Value": agent_id},
                    ],
                }
            ],
        }
        if s.runtime_ec2_key_name:
            options["KeyName"] = s.runtime_ec2_key_name
        if s.runtime_ec2_subnet_id:
            options["SubnetId"] = s.runtime_ec2_subnet_id
        if s.runtime_ec2_security_group_ids:
            options["SecurityGroupIds"] = s.runtime_ec2_security_group_ids
        instance_id = self.ec2.run_instances(**options)["Instances"][0]["InstanceId"]
        return Started(instance_id, self._endpoint(self._running(instance_id)))

    def _running(self, instance_id: str) -> dict[str, Any]:
        """Wait (EC2's own waiter, polling) until the instance runs; its description."""
        self.ec2.get_waiter("instance_running").wait(
            InstanceIds=[instance_id], WaiterConfig={"Delay": 5, "MaxAttempts": 60}
        )
        return self._describe(instance_id) or {}

    def _describe(self, instance_id: str) -> dict[str, Any] | None:
        try:
            reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except ClientError as exc:
            if "NotFound" in exc.response.get("Error", {}).get("Code", ""):
                return None
            raise
        instances = [i for r in reservations for i in r["Instances"]]
        return instances[0] if instances else None

    def _endpoint(self, instance: dict[str, Any]) -> str:
        address = instance.get("PublicIpAddress") or instance.get("PrivateIpAddress")
        return f"http://{address}:{RUNTIME_PORT}"

    def _by_agent(self, agent_id: str) -> dict[str, Any] | None:
        reservations = self.ec2.describe_instances(
            Filters=[
                {"Name": "tag:hutch:agent", "Values": [agent_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )["Reservations"]
        instances = [i for r in reservations for i in r["Instances"]]
        return instances[0] if instances else None

    async def status(self, handle: str) -> Liveness:
        instance = await asyncio.to_thread(self._describe, handle)
        state = (instance or {}).get("State", {}).get("Name")
        if state in (None, "terminated", "shutting-down"):
            return "missing"
        return "running" if state == "running" else "dead"

    async def stop(self, handle: str) -> None:
        """Stop the machine; its disk, and so the workspace, stays."""
        try:
            await asyncio.to_thread(self.ec2.stop_instances, InstanceIds=[handle])
        except ClientError:
            return

    async def restart(self, spec: RuntimeSpec, handle: str) -> Started:
        """The same machine with the new config: started again if stopped, config written over SSH."""
        instance = await asyncio.to_thread(self._describe, handle)
        state = (instance or {}).get("State", {}).get("Name")
        if state in (None, "terminated", "shutting-down"):
            return await self.create(spec)
        if state != "running":
            await asyncio.to_thread(self.ec2.start_instances, InstanceIds=[handle])
        instance = await asyncio.to_thread(self._running, handle)
        ip = instance.get("PublicIpAddress") or instance.get("PrivateIpAddress") or ""
        await self.run(ip, f"sudo tee {CONFIG_PATH} > /dev/null", stdin=config_json(spec.config))
        await self.run(ip, f"sudo systemctl restart {SERVICE}")
        return Started(handle, self._endpoint(instance))

    async def destroy(self, home: Path, handle: str | None) -> None:
        instance_id = handle
        if instance_id is None:
            found = await asyncio.to_thread(self._by_agent, home.name)
            instance_id = found["InstanceId"] if found else None
        if instance_id is not None:
            try:
                await asyncio.to_thread(self.ec2.terminate_instances, InstanceIds=[instance_id])
            except (ClientError, BotoCoreError):
                return

    async def usage(self, handle: str) -> RuntimeUsage | None:
        """Not measured for machines yet (it would come from CloudWatch): the status shows none."""
        return None

    async def logs(self, home: Path, lines: int = 200) -> str:
        instance = await asyncio.to_thread(self._by_agent, home.name)
        if instance is None or instance.get("State", {}).get("Name") != "running":
            return ""
        ip = instance.get("PublicIpAddress") or instance.get("PrivateIpAddress") or ""
        return await self.run(ip, f"sudo journalctl -u {SERVICE} -n {int(lines)} --no-pager")

    # --- SSH -----------------------------------------------------------------------------------------

    async def run(self, ip: str, command: str, *, stdin: str | None = None) -> str:
        """Run a command on an instance as ``HUTCH_RUNTIME_SSH_USER`` with ``HUTCH_RUNTIME_SSH_KEY_FILE``."""
        key_file = self.settings.runtime_ssh_key_file
        async with asyncssh.connect(
            self.ssh_address(ip),
            port=self.ssh_port,
            username=self.settings.runtime_ssh_user,
            client_keys=[str(key_file)] if key_file else None,
            known_hosts=None,  # fresh machines: their host keys are not known ahead
        ) as connection:
            result = await connection.run(command, input=stdin, check=True, timeout=60)
        return str(result.stdout or "")
