"""`/healthz` of a real `hutch serve` against a bare FastAPI app, same load generator, same run."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from common import HUTCH, ROOT, LoadResult, clean_env, free_port, load, print_table, process, wait_for


def measure(args: list[str], env: dict[str, str], port: int) -> LoadResult:
    with process(args, env):
        wait_for(f"http://127.0.0.1:{port}/readyz" if "serve" in args else f"http://127.0.0.1:{port}/healthz")
        return load(f"http://127.0.0.1:{port}/healthz")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)
        hutch_port = free_port()
        hutch = measure(
            [*HUTCH, "serve", "--no-worker", "--port", str(hutch_port)],
            clean_env(HUTCH_DATA_DIR=str(Path(tmp) / "data"), HUTCH_LOG_LEVEL="WARNING"),
            hutch_port,
        )
    bare_port = free_port()
    bare = measure(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--port",
            str(bare_port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--app-dir",
            str(ROOT / "bench"),
        ],
        clean_env(),
        bare_port,
    )
    rows = [
        [name, r.requests, r.errors, r.rps, r.percentile(50), r.percentile(99)]
        for name, r in (("hutch serve", hutch), ("bare FastAPI", bare))
    ]
    print_table(
        "GET /healthz, 16 connections, 4000 requests after 300 warm-up",
        ["target", "requests", "errors", "req/s", "p50 ms", "p99 ms"],
        rows,
    )
    print(f"  ratio hutch/bare req/s: {hutch.rps / bare.rps:.2f}")


if __name__ == "__main__":
    main()
