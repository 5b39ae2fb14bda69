"""localstripe on a loopback port, in-process, for the parts of Stripe it implements.

localstripe (PyPI) covers customers, payment methods, legacy plans and products, subscriptions without
trials, invoices, payment intents and its own signed webhooks. What it lacks (Prices, Checkout Sessions,
the Billing Portal, trials) lives in ``tests/fakes/stripe_api.py``.

Its CLI listens on every interface, so this serves its routes on 127.0.0.1 from a background thread with
its own event loop. Its data lives in module globals, hence one running instance per process.

Workarounds for the installed versions, applied here rather than in the package:

- every write pickles the whole store to ``/tmp/localstripe.pickle`` (slow as the store grows and shared
  by every process on the machine): turned off on the store instance;
- its routes use plain functions as handlers, which aiohttp deprecates with a warning at import;
- its module-level ``app`` binds to the first event loop that serves it, so a second ``start`` in the same
  process would fail: each start copies its routes and middlewares into a fresh application;
- ``DELETE /_config/data`` forgets the data but not the registered webhooks nor the deliveries already
  scheduled (each waits a second before posting), so one test's events would reach the next test's
  receiver: ``reset`` also drops both;
- it answers 500 (an unbound variable) to an ``Authorization`` header that is neither ``Bearer`` nor
  ``Basic``; the official SDK always sends ``Bearer``, so nothing is done about it.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import warnings
from typing import Any

import httpx
import stripe

with warnings.catch_warnings():
    # aiohttp warns about localstripe's synchronous handlers while the routes are registered.
    warnings.simplefilter("ignore", DeprecationWarning)
    from aiohttp import web
    from localstripe import resources as _resources
    from localstripe import server as _server
    from localstripe import webhooks as _webhooks

TEST_API_KEY = "sk_test_localstripe"

# The store calls this after every change; tests never reload it, so writing it only costs time.
_resources.store.dump_to_disk = lambda: None


class LocalStripe:
    """localstripe served on a free 127.0.0.1 port; point ``StripeClient`` at ``base_url``."""

    _running: LocalStripe | None = None

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, api_key: str = TEST_API_KEY) -> stripe.StripeClient:
        """An official SDK client for this server; no retries, so failures show at once."""
        return stripe.StripeClient(api_key, base_addresses={"api": self.base_url}, max_network_retries=0)

    def start(self) -> None:
        if LocalStripe._running is not None:
            raise RuntimeError("localstripe keeps its data in module globals: one instance per process")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="localstripe", daemon=True)
        self._thread.start()
        self._runner = self._call(self._serve(sock))
        LocalStripe._running = self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None
            self._thread = None
            self._runner = None
            LocalStripe._running = None

    def reset(self) -> None:
        """Forget every object, webhook endpoint and pending webhook delivery."""
        response = httpx.delete(f"{self.base_url}/_config/data")
        response.raise_for_status()
        self._call(self._forget_webhooks())

    def add_webhook(
        self,
        url: str,
        secret: str | None = None,
        events: list[str] | None = None,
        endpoint_id: str = "hutch",
    ) -> str:
        """Have localstripe post its signed events to ``url``; returns the signing secret.

        localstripe waits about a second after an event before delivering it.
        """
        secret = secret or f"whsec_{secrets.token_hex(16)}"
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = events
        # JSON is accepted by the config route, and keeps a list a list without bracket notation.
        response = httpx.post(f"{self.base_url}/_config/webhooks/{endpoint_id}", json=body)
        response.raise_for_status()
        return secret

    # --- event loop thread ------------------------------------------------------------------------

    def _call(self, coroutine: Any) -> Any:
        assert self._loop is not None, "localstripe is not started"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _serve(self, sock: socket.socket) -> web.AppRunner:
        # A previous instance in this process may have left data in the module globals.
        _resources.store.clear()
        await self._forget_webhooks()
        runner = web.AppRunner(_build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        return runner

    async def _shutdown(self) -> None:
        await self._forget_webhooks()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forget_webhooks(self) -> None:
        _webhooks._webhooks.clear()
        # Deliveries are bare tasks sleeping before they post; nothing else in this loop is named so.
        pending = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__name__", "") == "_send_webhook" and not task.done()
        ]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _build_app() -> web.Application:
    """localstripe's routes in a new application (its own is tied to the first loop that ran it)."""
    # The store-saving middleware is left out: saving is turned off above.
    app = web.Application(middlewares=[_server.error_middleware, _server.auth_middleware])
    app.on_response_prepare.append(_server.add_cors_headers)
    for route in _server.app.router.routes():
        assert route.resource is not None
        # Handlers here are aiohttp's async wrappers of localstripe's functions: no warning again.
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    return app
