"""The production files checked statically (no Docker engine here): the image builds from files that exist,
runs unprivileged with a health check; compose wires migrations before the API and workers; every setting
they name is one Hutch knows; the systemd units start the right commands as an unprivileged user."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

from hutch.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SETTINGS = {f"HUTCH_{name.upper()}" for name in Settings.model_fields}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())  # join continued lines
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [
        (row.split(maxsplit=1)[0].upper(), row.split(maxsplit=1)[1] if " " in row else "") for row in rows
    ]


def test_the_image_is_multi_stage_unprivileged_and_checks_its_health() -> None:
    steps = instructions(DEPLOY / "Dockerfile")
    stages = [i for i, (op, _) in enumerate(steps) if op == "FROM"]
    assert len(stages) >= 2, "build and run stages"
    final = steps[stages[-1] :]
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the running stage drops root"
    assert any(op == "HEALTHCHECK" and "/healthz" in arg for op, arg in final)
    assert any(op == "CMD" and '"hutch", "serve"' in arg for op, arg in final)
    for op, arg in steps:
        if op == "COPY" and "--from=" not in arg:
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        if op == "ENV":
            for name in re.findall(r"\b(HUTCH_\w+)=", arg):
                assert name in SETTINGS, f"{name} is not a Hutch setting"


def test_compose_runs_migrations_before_the_api_and_workers() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["migrate"]["command"] == ["hutch", "db", "upgrade"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert services[name]["env_file"] == "hutch.env"
        assert services[name]["environment"]["HUTCH_DATABASE_URL"].startswith("postgresql://")
    assert services["api"]["command"][:2] == ["hutch", "serve"]
    assert services["worker"]["command"] == ["hutch", "worker"]
    assert services["redis"]["profiles"] == ["redis"]
    assert "postgres-data" in compose["volumes"]
    env_names = re.findall(r"^#?\s*(HUTCH_\w+)=", (DEPLOY / "hutch.env.example").read_text(), re.MULTILINE)
    assert env_names and set(env_names) <= SETTINGS, set(env_names) - SETTINGS


def test_systemd_units_run_hutch_unprivileged() -> None:
    for unit, command in (("hutch.service", "hutch serve"), ("hutch-worker@.service", "hutch worker")):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
        parser.read(DEPLOY / unit)
        service = parser["Service"]
        assert command in service["ExecStart"] and service["User"] == "hutch"
        assert service["NoNewPrivileges"] == "true" and service["EnvironmentFile"] == "/etc/hutch/hutch.env"
        assert parser["Install"]["WantedBy"] == "multi-user.target"
