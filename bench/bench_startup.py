"""Cold `hutch serve` to `/readyz` answering 200: first start (initdb + migrations) and later starts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from common import HUTCH, clean_env, free_port, median, print_table, process, wait_for

SECOND_STARTS = 3


def time_start(data_dir: Path) -> float:
    port = free_port()
    env = clean_env(HUTCH_DATA_DIR=str(data_dir))
    with process([*HUTCH, "serve", "--port", str(port)], env):
        return wait_for(f"http://127.0.0.1:{port}/readyz")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        data_dir = Path(tmp) / "data"
        first = time_start(data_dir)
        again = [time_start(data_dir) for _ in range(SECOND_STARTS)]
    rows: list[list[object]] = [["first start (initdb, migrations)", first]]
    rows += [[f"second start, run {n + 1} (data reused)", s] for n, s in enumerate(again)]
    rows.append(["second start, median", median(again)])
    print_table("hutch serve → /readyz 200 (seconds)", ["scenario", "seconds"], rows)


if __name__ == "__main__":
    main()
