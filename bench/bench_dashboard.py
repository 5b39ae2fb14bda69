"""Dashboard pages with the demo data loaded: server time of each page, p50/p95/max over 20 calls.

A fresh deployment (embedded PostgreSQL) gets `hutch demo` (twelve organisations, 90 days), then one
`hutch serve` answers. Each page is requested over HTTP with a signed-in session after one warm-up call;
`/healthz` in the same run is the reference (the cost of any request). Target: every page under 300 ms.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time

import httpx

from common import HUTCH, ROOT, clean_env, free_port, print_table, process, wait_for

CALLS = 20
PASSWORD = "demo-password-2026"
OWNER_PAGES = ["/app/agents", "/app/agents/{agent}/chat", "/app/agents/{agent}/settings",
               "/app/agents/{agent}/knowledge", "/app/agents/{agent}/channels", "/app/agents/{agent}/tasks",
               "/app/api-keys", "/app/billing", "/app/usage", "/app/usage?days=365", "/app/team"]  # fmt: skip
ADMIN_PAGES = ["/admin", "/admin?days=365", "/admin/users", "/admin/orgs", "/admin/agents", "/admin/alerts"]


def signed_in(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, "no CSRF token on the login page"
    answer = client.post("/login", data={"csrf": token.group(1), "email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text[:300]
    return client


def timings(client: httpx.Client, path: str) -> list[float]:
    assert client.get(path).status_code == 200, path  # warm-up
    spent = []
    for _ in range(CALLS):
        started = time.perf_counter()
        response = client.get(path)
        spent.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return sorted(spent)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as data:
        port = free_port()
        env = clean_env(HUTCH_DATA_DIR=data, HUTCH_PORT=str(port), HUTCH_LOG_LEVEL="WARNING")
        print("Loading the demo data…", flush=True)
        subprocess.run([*HUTCH, "demo"], env=env, cwd=ROOT, check=True, capture_output=True)
        base = f"http://127.0.0.1:{port}"
        with process([*HUTCH, "serve"], env):
            wait_for(f"{base}/readyz")
            owner = signed_in(base, "owner@bluebird-travel.example")
            agent = re.search(r'href="/app/agents/(agt_\w+)"', owner.get("/app/agents").text)
            assert agent, "the demo owner has no agent"
            admin = signed_in(base, "admin@demo.example")
            rows = []
            reference = timings(owner, "/healthz")
            ref_p50 = reference[len(reference) // 2]
            rows.append(["/healthz (reference)", f"{ref_p50:.1f}", f"{reference[int(CALLS * 0.95) - 1]:.1f}",
                         f"{reference[-1]:.1f}", "1.0"])  # fmt: skip
            worst = 0.0
            for client, pages in ((owner, OWNER_PAGES), (admin, ADMIN_PAGES)):
                for page in pages:
                    spent = timings(client, page.format(agent=agent.group(1)))
                    p50, p95 = spent[len(spent) // 2], spent[int(CALLS * 0.95) - 1]
                    worst = max(worst, p95)
                    rows.append(
                        [page, f"{p50:.1f}", f"{p95:.1f}", f"{spent[-1]:.1f}", f"{p50 / ref_p50:.1f}"]
                    )
    print_table(
        f"Dashboard pages with the demo data ({CALLS} calls each, ms)",
        ["page", "p50", "p95", "max", "p50 / reference"],
        rows,
    )
    print(f"  target: every page under 300 ms; slowest p95 {worst:.0f} ms")


if __name__ == "__main__":
    main()
