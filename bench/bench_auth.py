"""What authentication and per-key rate limiting add to a request, over HTTP and inside the process.

One `hutch serve` on a temporary data dir (embedded PostgreSQL). In the same run it measures an
unauthenticated `GET /healthz` (the reference), `GET /api/v1/api-keys/current` with an API key (key lookup
plus one rate-limit hit) and `GET /api/v1/users/me` with an access token (JWT plus user and membership
reads, no rate limit). Latency is measured over one connection, so it is the cost of one request and not
queueing behind others; throughput over 16 connections. The target is authentication plus rate limiting
under 1 ms p50 above the reference.

Then, inside this process: the same requests through httpx's ASGI transport (no sockets, no HTTP
parsing), against a second reference that does what every real endpoint does without authenticating
(one transaction with one query) so the difference is authentication alone, and one rate-limit hit
alone, on PostgreSQL and, when `redis-server` is installed, on Redis (also over HTTP, through a second
`hutch serve` with `HUTCH_REDIS_URL`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
from sqlalchemy import text

from common import HUTCH, LoadResult, clean_env, free_port, load, print_table, process, wait_for
from hutch.app import create_app
from hutch.core.logging import configure_logging
from hutch.core.ratelimit import RedisRateLimiter
from hutch.http.authz import CurrentPrincipal
from hutch.http.dependencies import UoWDep
from hutch.resources import Resources
from hutch.settings import Settings

THROUGHPUT_REQUESTS = 4000
LATENCY_REQUESTS = 2000
IN_PROCESS_CALLS = 2000
KEY_LIMIT = 100_000  # the highest a key may have; far above what this run sends in a minute
HEALTHZ = "/healthz"
KEY_PATH = "/api/v1/api-keys/current"
ME_PATH = "/api/v1/users/me"
PRINCIPAL_PATH = "/bench/principal"
ONE_QUERY_PATH = "/bench/one-query"


@contextmanager
def redis_server() -> Iterator[str | None]:
    """A throw-away redis-server on a free port (its URL), or None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory(prefix="hutch-bench-redis-") as tmp:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with process([*args, "--dir", tmp], clean_env()):
            client = redis.Redis.from_url(url, socket_connect_timeout=1)
            deadline = time.monotonic() + 15
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            client.close()
            yield url


def sign_up_and_create_key(base: str) -> tuple[str, str]:
    """An access token and an API key with the highest rate limit."""
    signup = httpx.post(
        f"{base}/api/v1/auth/signup",
        json={"email": "bench@example.com", "password": "bench password 1"},
        timeout=30,
    )
    signup.raise_for_status()
    access_token = str(signup.json()["access_token"])
    created = httpx.post(
        f"{base}/api/v1/api-keys",
        json={"label": "bench", "rate_limit_per_minute": KEY_LIMIT},
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )
    created.raise_for_status()
    return access_token, str(created.json()["key"])


def http_rows(
    base: str, targets: list[tuple[str, str, dict[str, str]]]
) -> list[tuple[str, LoadResult, LoadResult]]:
    """(name, throughput run over 16 connections, latency run over 1 connection) per target."""
    results = []
    for name, path, headers in targets:
        throughput = load(f"{base}{path}", total=THROUGHPUT_REQUESTS, concurrency=16, headers=headers)
        latency = load(f"{base}{path}", total=LATENCY_REQUESTS, warmup=200, concurrency=1, headers=headers)
        for run in (throughput, latency):
            if run.errors:
                raise RuntimeError(f"{name}: {run.errors} requests failed")
        results.append((name, throughput, latency))
    return results


def _percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def _time_calls(call: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    for _ in range(n // 10):  # warm-up: pools filled, code paths compiled
        await call()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1000)
    return _percentiles(samples)


async def principal_only(principal: CurrentPrincipal) -> dict[str, str]:
    """A route that does nothing but authenticate (and rate-limit) its caller."""
    return {"org_id": principal.org_id}


async def one_query(uow: UoWDep) -> dict[str, str]:
    """The unauthenticated reference that does the database work every real endpoint does: one
    transaction with one query. What authentication adds on top of it is its own cost."""
    await uow.session.execute(text("SELECT 1"))
    return {"status": "ok"}


async def in_process(
    data_dir: Path, access_token: str, api_key: str, redis_url: str | None
) -> list[tuple[str, float, float]]:
    """p50/p99 (ms) of authenticating through the ASGI app, and of one rate-limit hit alone."""
    settings = Settings(
        _env_file=None, data_dir=data_dir, database_url=None, redis_url=None, log_level="WARNING"
    )
    app = create_app(settings)
    app.add_api_route(PRINCIPAL_PATH, principal_only, methods=["GET"])
    app.add_api_route(ONE_QUERY_PATH, one_query, methods=["GET"])
    rows: list[tuple[str, float, float]] = []
    async with app.router.lifespan_context(app):
        resources: Resources = app.state.resources
        postgres_limiter = resources.rate_limiter
        redis_limiter = RedisRateLimiter.from_url(redis_url) if redis_url is not None else None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            def request(path: str, headers: dict[str, str]) -> Callable[[], Awaitable[object]]:
                async def call() -> None:
                    response = await client.get(path, headers=headers)
                    if response.status_code != 200:
                        raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")

                return call

            async def timed(name: str, call: Callable[[], Awaitable[object]]) -> None:
                rows.append((name, *await _time_calls(call, IN_PROCESS_CALLS)))

            by_key = request(PRINCIPAL_PATH, {"X-API-Key": api_key})
            await timed("ASGI GET /healthz (no auth)", request(HEALTHZ, {}))
            await timed("ASGI GET one query (no auth)", request(ONE_QUERY_PATH, {}))
            await timed("ASGI authenticate API key (PostgreSQL limit)", by_key)
            if redis_limiter is not None:
                resources.rate_limiter = redis_limiter
                await timed("ASGI authenticate API key (Redis limit)", by_key)
                resources.rate_limiter = postgres_limiter
            await timed(
                "ASGI authenticate access token",
                request(PRINCIPAL_PATH, {"Authorization": f"Bearer {access_token}"}),
            )
        await timed("PostgresRateLimiter.hit alone", lambda: postgres_limiter.hit("bench:pg", 10**9, 60))
        if redis_limiter is not None:
            await timed("RedisRateLimiter.hit alone", lambda: redis_limiter.hit("bench:redis", 10**9, 60))
            await redis_limiter.aclose()
    return rows


def main() -> None:
    configure_logging(json_logs=False, level="WARNING")
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp, redis_server() as redis_url:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        data_dir = Path(tmp) / "data"
        env = clean_env(HUTCH_DATA_DIR=str(data_dir), HUTCH_LOG_LEVEL="WARNING")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with process([*HUTCH, "serve", "--no-worker", "--port", str(port)], env):
            wait_for(f"{base}/readyz")
            access_token, api_key = sign_up_and_create_key(base)
            http = http_rows(
                base,
                [
                    ("GET /healthz (no auth)", HEALTHZ, {}),
                    ("API key (PostgreSQL limit)", KEY_PATH, {"X-API-Key": api_key}),
                    ("access token", ME_PATH, {"Authorization": f"Bearer {access_token}"}),
                ],
            )
            if redis_url is not None:
                redis_port = free_port()
                redis_base = f"http://127.0.0.1:{redis_port}"
                redis_env = {**env, "HUTCH_REDIS_URL": redis_url}
                with process([*HUTCH, "serve", "--no-worker", "--port", str(redis_port)], redis_env):
                    wait_for(f"{redis_base}/readyz")
                    http += http_rows(
                        redis_base, [("API key (Redis limit)", KEY_PATH, {"X-API-Key": api_key})]
                    )
            inside = asyncio.run(in_process(data_dir, access_token, api_key, redis_url))

    reference = http[0][2].percentile(50)
    print_table(
        f"Authenticated GETs on one hutch serve: req/s over 16 connections ({THROUGHPUT_REQUESTS} requests), "
        f"latency over 1 connection ({LATENCY_REQUESTS} requests)",
        ["target", "req/s", "p50 ms", "p99 ms", "p50 over /healthz ms"],
        [
            [name, tp.rps, lat.percentile(50), lat.percentile(99), lat.percentile(50) - reference]
            for name, tp, lat in http
        ],
    )
    asgi_reference, one_query_reference = inside[0][1], inside[1][1]

    def over(name: str, p50: float, reference: float) -> float | str:
        return p50 - reference if name.startswith("ASGI authenticate") else "-"

    print_table(
        f"Inside the process, one call at a time ({IN_PROCESS_CALLS} calls each)",
        ["path", "p50 ms", "p99 ms", "p50 over /healthz ms", "p50 over one-query GET ms (auth cost)"],
        [
            [name, p50, p99, over(name, p50, asgi_reference), over(name, p50, one_query_reference)]
            for name, p50, p99 in inside
        ],
    )
    if redis_url is None:
        print("  (redis-server not installed: Redis rows skipped; apt-get install redis-server)")


if __name__ == "__main__":
    main()
