"""The OpenID provider the single sign-on tests sign in at: ``oidc-provider-mock`` on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oidc_provider_mock import run_server_in_thread


@pytest.fixture(scope="session")
def issuer() -> Iterator[str]:
    """A real OpenID provider: discovery, JWKS, authorization and token endpoints, signed ID tokens."""
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"
