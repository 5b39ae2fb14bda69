"""The browser's egress proxy on its own: the address it checked is the one it connects to, refusals
carry their reason, HTTPS tunnels are checked like plain requests."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from hutch.browser.egress_proxy import EgressProxy
from hutch.core.egress import EgressPolicy
from tests.browser.site import PrivateService, TestSite


async def shop_resolves_to_loopback(host: str, port: int) -> Sequence[str]:
    """A resolver that knows one name (the system's could not resolve it at all)."""
    if host == "shop.test":
        return ["127.0.0.1"]
    raise OSError(f"{host} is unknown")


async def test_the_proxy_connects_to_the_address_it_checked_and_refuses_the_rest(
    site: TestSite, private_service: PrivateService
) -> None:
    proxy = EgressProxy(EgressPolicy.of(["127.0.0.1"]), shop_resolves_to_loopback)
    url = await proxy.start()
    try:
        async with httpx.AsyncClient(proxy=url, timeout=5) as client:
            # The name is resolved by the proxy, once, and the request goes to that address.
            answer = await client.get(f"http://shop.test:{site.port}/whoami", headers={"Cookie": "who=ada"})
            assert answer.status_code == 200 and "Cookie who=ada" in answer.text

            refused = await client.get(f"{private_service.base_url}/secret")
            assert refused.status_code == 403 and "127.0.0.2 is a loopback address" in refused.text
            with pytest.raises(httpx.ProxyError):
                await client.get(f"https://127.0.0.2:{private_service.port}/secret")
            unknown = await client.get("http://nowhere.test/")
            assert unknown.status_code == 502 and "could not be resolved" in unknown.text
        assert private_service.hits == []
        assert [r.split(" is ")[0] for r in proxy.refusals] == ["refused: 127.0.0.2"] * 2
    finally:
        await proxy.close()
