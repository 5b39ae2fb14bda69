"""Run every benchmark in turn; each prints its own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = [
    "bench_startup.py",
    "bench_healthz.py",
    "bench_auth.py",
    "bench_openai_api.py",
    "bench_webhooks.py",
    "bench_knowledge.py",
    "bench_telegram.py",
    "bench_end_user_limit.py",
    "bench_turns.py",
    "bench_turn_cost.py",
    "bench_turn_floor.py",
    "bench_runtimes.py",
    "bench_analytics.py",
    "bench_dashboard.py",
    "bench_inbox.py",
    "bench_soak.py",
    "bench_budgets.py",
    "bench_tenant_search.py",
    "fuzz_long.py",
]

if __name__ == "__main__":
    here = Path(__file__).parent
    failed = [b for b in BENCHES if subprocess.run([sys.executable, str(here / b)], cwd=here).returncode != 0]
    sys.exit(1 if failed else 0)
