"""The long API fuzz: every boundary value (valid and invalid) as every caller, and 50 random examples per
operation (``HUTCH_FUZZ_EXAMPLES`` overrides), against a real `hutch serve` with every outside service on its
fake. The same test `make test` runs at a smaller size (tests/test_api_fuzz.py); prints a table and exits
non-zero when an answer is a 5xx or breaks its schema."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from common import ROOT, print_table

TESTS = {
    "random examples": "test_no_server_error_and_answers_match_the_schema",
    "coverage phase": "test_boundary_values_never_break_the_server",
}


def main() -> int:
    env = {**os.environ, "HUTCH_FUZZ_LONG": "1"}
    rows = []
    failed = False
    for phase, test in TESTS.items():
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", f"tests/test_api_fuzz.py::{test}", "-q", "-p", "no:randomly"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        failed |= run.returncode != 0
        rows.append((phase, "passed" if run.returncode == 0 else "FAILED", seconds))
        if run.returncode != 0:
            print(run.stdout[-6000:])
    print_table("Long API fuzz (HUTCH_FUZZ_LONG=1)", ["phase", "result", "seconds"], rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
