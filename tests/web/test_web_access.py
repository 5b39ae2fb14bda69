"""Every dashboard route, every way in: without a session, without the CSRF token, as a member for the admin
console, and with another organisation's ids — next to the API's matrix, from the same route table."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient

from tests.conftest import LiveDeployment, asgi_client
from tests.factories import DEFAULT_PASSWORD
from tests.test_access_matrix import PARAM, ROUTES, Guard, World, deployment, world  # noqa: F401 - fixtures
from tests.web.test_dashboard import csrf_of

WEB_ROUTES = sorted(k for k, v in ROUTES.items() if v.guard in (Guard.WEB, Guard.WEB_ADMIN))
EXTRA_IDS = {"action": "start", "alert_id": "alr_missing", "account_id": "cra_missing"}
# Path parameters that name a kind of thing (a sign-in provider), not something an org owns.
NOT_OWNED = {"provider"}


@pytest.fixture
async def client(deployment: LiveDeployment) -> AsyncIterator[AsyncClient]:  # noqa: F811
    """A browser of its own for each case (its cookies start empty), on the matrix's deployment."""
    async with asgi_client(deployment.app) as browser:
        yield browser


def fill(path: str, ids: dict[str, str]) -> str:
    return PARAM.sub(lambda m: ids.get(m.group(1), EXTRA_IDS.get(m.group(1), "missing")), path)


@pytest.mark.parametrize(("method", "path"), WEB_ROUTES)
async def test_nobody_else_gets_in(client: AsyncClient, world: World, method: str, path: str) -> None:  # noqa: F811
    access = ROUTES[(method, path)]
    own = fill(path, {"agent_id": "agt_missing"})
    anonymous = await client.request(method, own, data=access.form)
    assert anonymous.status_code == 303, anonymous.text[:300]
    assert anonymous.headers["location"].startswith("/login?next=/")

    form = await client.get("/login")
    signed_in = await client.post(
        "/login", data={"csrf": csrf_of(form), "email": world.a.user.email, "password": DEFAULT_PASSWORD}
    )
    assert signed_in.status_code == 303
    token = csrf_of(await client.get("/app/agents"))
    seen = []
    if method == "POST":
        forged = await client.request(method, own, data=access.form)  # signed in, but no CSRF token
        assert forged.status_code == 403, forged.text[:300]
        seen.append(forged.text)
    if access.guard is Guard.WEB_ADMIN:
        refused = await client.request(method, own, data={**(access.form or {}), "csrf": token})
        assert refused.status_code == 403, refused.text[:300]
        seen.append(refused.text)
    elif any(name not in NOT_OWNED for name in PARAM.findall(path)):
        foreign = await client.request(
            method, fill(path, world.b_ids), data={**(access.form or {}), "csrf": token}
        )
        assert foreign.status_code == 404, f"{method} {path}: {foreign.status_code} {foreign.text[:300]}"
        seen.append(foreign.text)
    for text in seen:
        for secret in world.secrets_of_b:
            assert secret not in text, f"{method} {path} leaked {secret!r}"
