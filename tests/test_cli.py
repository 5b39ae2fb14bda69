"""The ``hutch`` command as a user runs it: clear one-line errors, nothing half-created, clean stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hutch import __version__

HUTCH = [sys.executable, "-m", "hutch.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HUTCH, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    os.chmod(tmp_path, 0o755)
    return tmp_path / "data"


def test_version() -> None:
    result = run("version", env=_env())
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_unknown_flag_exits_2_with_a_clear_message(data_dir: Path) -> None:
    result = run("serve", "--colour", "blue", env=_env(HUTCH_DATA_DIR=str(data_dir)))
    assert result.returncode == 2
    assert "No such option" in result.stderr and "--colour" in result.stderr
    assert not data_dir.exists()


def test_invalid_setting_exits_2_naming_it(data_dir: Path) -> None:
    result = run("serve", env=_env(HUTCH_DATA_DIR=str(data_dir), HUTCH_PORT="eighty"))
    assert result.returncode == 2
    assert "Invalid setting HUTCH_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert not data_dir.exists()


def test_port_in_use_exits_1_before_creating_anything(data_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port), env=_env(HUTCH_DATA_DIR=str(data_dir)))
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert not data_dir.exists()


def test_wrong_database_url_exits_1_without_showing_the_password(data_dir: Path) -> None:
    env = _env(
        HUTCH_DATA_DIR=str(data_dir),
        HUTCH_DATABASE_URL="postgresql://hutch:pw-do-not-show@127.0.0.1:1/hutch",
    )
    result = run("serve", "--port", str(_free_port()), env=env)
    assert result.returncode == 1
    assert "Cannot connect to the database at postgresql://hutch:***@127.0.0.1:1/hutch" in result.stderr
    assert "check HUTCH_DATABASE_URL" in result.stderr
    assert "pw-do-not-show" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_unusable_data_dir_exits_1_with_what_to_do(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("x")
    result = run("db", "current", env=_env(HUTCH_DATA_DIR=str(not_a_dir / "data")))
    assert result.returncode == 1
    assert "Cannot create the data dir" in result.stderr and "HUTCH_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_mode_refuses_to_start_without_its_settings(data_dir: Path) -> None:
    result = run("serve", env=_env(HUTCH_ENV="production", HUTCH_DATA_DIR=str(data_dir)))
    assert result.returncode == 2
    assert (
        "production mode requires HUTCH_DATABASE_URL, HUTCH_SECRET_KEY, HUTCH_ENCRYPTION_KEYS"
        in result.stderr
    )


def test_db_commands_migrate_down_and_up_on_the_embedded_database(data_dir: Path) -> None:
    env = _env(HUTCH_DATA_DIR=str(data_dir))
    up = run("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    current = run("db", "current", env=env)
    assert "up to date" in current.stdout
    down = run("db", "downgrade", "base", env=env)
    assert down.returncode == 0, down.stderr
    assert "base (empty)" in run("db", "current", env=env).stdout
    assert run("db", "upgrade", env=env).returncode == 0


# --- hutch serve with the embedded PostgreSQL, as `make run` starts it -------------------------------


class Serve:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> subprocess.Popen[str]:
        self.process = subprocess.Popen(
            [*HUTCH, "serve", "--port", str(self.port)],
            env=_env(HUTCH_DATA_DIR=str(self.data_dir)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"hutch serve exited: {self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self.process
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("hutch serve did not become ready")

    def output(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        return self.process.stdout.read()


def postgres_pids(data_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"/postgres") and str(data_dir).encode() in b" ".join(cmdline):
            pids.append(int(proc.name))
    return pids


def _wait_no_postgres(data_dir: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while postgres_pids(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert postgres_pids(data_dir) == [], "PostgreSQL was left running"


@pytest.fixture
def serve(data_dir: Path) -> Iterator[Serve]:
    server = Serve(data_dir)
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.kill()
    for pid in postgres_pids(data_dir):
        os.kill(pid, signal.SIGKILL)


def test_serve_starts_reuses_data_stops_cleanly_and_recovers_after_a_crash(
    serve: Serve, data_dir: Path
) -> None:
    first = serve.start()
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    assert (data_dir / "secrets.json").exists()
    first.send_signal(signal.SIGINT)  # Ctrl-C
    assert first.wait(timeout=30) == 0
    assert "Hutch stopped." in serve.output()
    _wait_no_postgres(data_dir)

    # A second start reuses the data; then the owner dies without cleaning up.
    secrets_before = (data_dir / "secrets.json").read_text()
    crashed = serve.start()
    assert (data_dir / "secrets.json").read_text() == secrets_before
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(timeout=10)
    assert postgres_pids(data_dir), "after SIGKILL the embedded PostgreSQL is expected to outlive its owner"

    # The next start adopts the orphaned server, says so, and stops it on SIGTERM (systemd, docker stop).
    recovered = serve.start()
    recovered.send_signal(signal.SIGTERM)
    assert recovered.wait(timeout=30) == 0
    assert "adopting PostgreSQL left running by a previous Hutch" in serve.output()
    _wait_no_postgres(data_dir)
