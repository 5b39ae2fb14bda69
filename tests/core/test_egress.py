"""The egress guard: URLs a member's agent chooses reach public addresses only, whatever their spelling.

The machine has no internet, so "public" is stood in for by a loopback server the policy allows by CIDR
(127.0.0.2) or by name, with names resolved by a stub resolver.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from hutch.core.egress import (
    EgressError,
    EgressPolicy,
    EgressRefused,
    Resolver,
    blocked_reason,
    check_destination,
    fetch,
)
from tests.fakes.server import BackgroundServer, free_port

PUBLIC = "127.0.0.2"  # stands in for a public address: the tests' policies allow it by CIDR
AS_IF_PUBLIC = EgressPolicy.of([f"{PUBLIC}/32"])
STRICT = EgressPolicy()


async def page(request: Request) -> Response:
    return PlainTextResponse(f"served by {request.scope['server'][0]} for host {request.headers['host']}")


async def redirect(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=302)


async def loop(request: Request) -> Response:
    return RedirectResponse("/loop", status_code=302)


async def big(request: Request) -> Response:
    return PlainTextResponse("x" * 5000)


async def big_stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"y" * 100

    return StreamingResponse(chunks(), media_type="text/plain")  # no Content-Length


async def slow(request: Request) -> Response:
    async def drip() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"."
            await asyncio.sleep(0.1)

    return StreamingResponse(drip(), media_type="text/plain")


APP = Starlette(
    routes=[
        Route("/page", page),
        Route("/redirect", redirect),
        Route("/loop", loop),
        Route("/big", big),
        Route("/big-stream", big_stream),
        Route("/slow", slow),
    ]
)


@pytest.fixture(scope="module")
def servers() -> Iterator[int]:
    """The same app on 127.0.0.1 (private) and 127.0.0.2 (as if public), on one port."""
    port = free_port()
    private, public = BackgroundServer(APP, port=port), BackgroundServer(APP, host=PUBLIC, port=port)
    private.start()
    public.start()
    yield port
    private.stop()
    public.stop()


def resolving(**names: Sequence[str]) -> Resolver:
    async def resolver(host: str, port: int) -> Sequence[str]:
        if host not in names:
            raise OSError("unknown name")
        return names[host]

    return resolver


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("2130706433", "a loopback address"),
        ("0x7f.0x0.0x0.0x1", "a loopback address"),
        ("0x7f000001", "a loopback address"),
        ("127.1", "a loopback address"),
        ("[::1]", "a loopback address"),
        ("[::ffff:127.0.0.1]", "a loopback address (127.0.0.1) in IPv6 form"),
        ("[::ffff:7f00:1]", "a loopback address (127.0.0.1) in IPv6 form"),
        ("[::7f00:1]", "a loopback address (127.0.0.1) in IPv6 form"),
        ("[64:ff9b::7f00:1]", "a loopback address (127.0.0.1) in IPv6 form"),
        ("[64:ff9b::a9fe:a9fe]", "the cloud metadata address (169.254.169.254) in IPv6 form"),
        ("[2002:7f00:1::]", "a loopback address (127.0.0.1) in IPv6 form"),
        ("[fd00:ec2::254]", "the cloud metadata address"),
        ("169.254.169.254", "the cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("10.1.2.3", "a private address"),
        ("192.168.0.1", "a private address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a private address"),  # reserved, and listed private by the IANA registry
        ("[fe80::1]", "a link-local address"),
    ],
)
async def test_numeric_and_ipv6_spellings_of_private_addresses_are_refused(host: str, reason: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        await fetch(f"http://{host}/page", STRICT, resolver=resolving())  # never asks a resolver
    assert str(refused.value).startswith("refused: ") and reason in str(refused.value)


async def test_an_octal_address_is_refused_as_an_invalid_url() -> None:
    with pytest.raises(EgressRefused, match=r"refused: .* is not a valid URL"):
        await fetch("http://0177.0.0.1/page", STRICT)


async def test_localhost_and_names_resolving_to_private_addresses_are_refused(servers: int) -> None:
    with pytest.raises(EgressRefused, match=r"refused: localhost resolves to a loopback address"):
        await fetch(f"http://localhost:{servers}/page", STRICT)
    resolver = resolving(**{"intranet.example": ["10.0.0.7"], "mixed.example": ["93.184.216.34", "10.0.0.8"]})
    with pytest.raises(EgressRefused, match=r"intranet.example resolves to a private address \(10.0.0.7\)"):
        await fetch("http://intranet.example/", STRICT, resolver=resolver)
    with pytest.raises(EgressRefused, match=r"mixed.example resolves to a private address \(10.0.0.8\)"):
        await fetch("http://mixed.example/", STRICT, resolver=resolver)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "gopher://example.com/"])
async def test_only_http_and_https_are_fetched(url: str) -> None:
    with pytest.raises(EgressRefused, match="only http and https"):
        await fetch(url, STRICT)


async def test_a_public_page_is_fetched_from_the_checked_address_with_its_name(servers: int) -> None:
    resolver = resolving(**{"news.example": [PUBLIC]})
    answer = await fetch(f"http://news.example:{servers}/page", AS_IF_PUBLIC, resolver=resolver)
    assert answer.status_code == 200
    assert answer.text == f"served by {PUBLIC} for host news.example:{servers}"


async def test_a_name_that_rebinds_after_the_check_is_still_reached_at_the_checked_address(
    servers: int,
) -> None:
    answers = [[PUBLIC], ["127.0.0.1"]]
    asked: list[str] = []

    async def rebinding(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return answers[min(len(asked) - 1, 1)]

    url = f"http://rebind.example:{servers}/redirect?to=/page"  # two requests to the same name
    answer = await fetch(url, AS_IF_PUBLIC, resolver=rebinding)
    assert answer.text == f"served by {PUBLIC} for host rebind.example:{servers}"
    assert asked == ["rebind.example"]  # resolved once, connected to what was checked


async def test_every_redirect_is_checked(servers: int) -> None:
    resolver = resolving(**{"news.example": [PUBLIC], "intranet.example": ["10.0.0.7"]})
    for target, reason in (
        (f"http://127.0.0.1:{servers}/page", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("http://[::ffff:127.0.0.1]/", "in IPv6 form"),
        ("http://intranet.example/", "intranet.example resolves to a private address"),
        ("file:///etc/passwd", "only http and https"),
    ):
        url = f"http://news.example:{servers}/redirect?to={target}"
        with pytest.raises(EgressRefused, match=reason):
            await fetch(url, AS_IF_PUBLIC, resolver=resolver)


async def test_redirects_are_followed_a_few_times_at_most(servers: int) -> None:
    with pytest.raises(EgressError, match="redirects more than 3 times"):
        await fetch(f"http://{PUBLIC}:{servers}/loop", AS_IF_PUBLIC, max_redirects=3)


@pytest.mark.parametrize("path", ["/big", "/big-stream"])
async def test_a_body_larger_than_the_cap_is_refused(servers: int, path: str) -> None:
    with pytest.raises(EgressError, match="more than 1000 bytes"):
        await fetch(f"http://{PUBLIC}:{servers}{path}", AS_IF_PUBLIC, max_bytes=1000)
    answer = await fetch(f"http://{PUBLIC}:{servers}{path}", AS_IF_PUBLIC, max_bytes=5000)
    assert len(answer.content) == 5000


async def test_a_slow_server_is_abandoned_at_the_time_limit(servers: int) -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(EgressError, match=r"did not answer within 0\.5 seconds"):
        await fetch(f"http://{PUBLIC}:{servers}/slow", AS_IF_PUBLIC, time_limit=0.5)
    assert asyncio.get_running_loop().time() - started < 2


async def test_allow_listed_hosts_and_networks_pass(servers: int) -> None:
    resolver = resolving(**{"wiki.internal": ["127.0.0.1"], "docs.corp.example": ["127.0.0.1"]})
    by_name = EgressPolicy.of(["wiki.internal", "*.corp.example"])
    for host in ("wiki.internal", "WIKI.Internal", "docs.corp.example"):
        answer = await fetch(f"http://{host}:{servers}/page", by_name, resolver=resolver)
        assert answer.text.startswith("served by 127.0.0.1")
    with pytest.raises(EgressRefused):
        await fetch(f"http://127.0.0.1:{servers}/page", by_name)  # the name is allowed, not its address

    by_network = EgressPolicy.of(["127.0.0.0/8"])
    answer = await fetch(f"http://localhost:{servers}/page", by_network)
    assert answer.text.startswith("served by 127.0.0.1")

    everything = EgressPolicy(allow_private=True)
    assert (await fetch(f"http://127.0.0.1:{servers}/page", everything)).status_code == 200


def test_the_decision_alone() -> None:
    assert check_destination("example.com", ["93.184.216.34"], STRICT) == ip_address("93.184.216.34")
    assert check_destination("v6.example", ["2606:2800:220:1::1"], STRICT) == ip_address("2606:2800:220:1::1")
    assert blocked_reason(ip_address("::ffff:8.8.8.8")) is None  # a mapped public address is public
    assert blocked_reason(ip_address("64:ff9b::808:808")) is None  # so is its NAT64 form
    assert check_destination("db.internal", ["10.0.0.5"], EgressPolicy.of(["10.0.0.0/24"]))
    with pytest.raises(EgressRefused, match=r"db\.internal resolves to a private address"):
        check_destination("db.internal", ["10.0.1.5"], EgressPolicy.of(["10.0.0.0/24"]))
    with pytest.raises(EgressError, match="does not resolve"):
        check_destination("nowhere.example", [], STRICT)


def _certificate_for(name: str, directory: Path) -> tuple[str, str]:
    """A self-signed certificate for ``name``: (certificate file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = directory / "certificate.pem", directory / "key.pem"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certificate_file), str(key_file)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, ssl.SSLContext]]:
    """HTTPS on 127.0.0.2 with a certificate for secure.example only, and a context that trusts it."""
    certificate, key = _certificate_for("secure.example", tmp_path_factory.mktemp("tls"))
    server = BackgroundServer(APP, host=PUBLIC, tls=(certificate, key))
    server.start()
    yield server.port, ssl.create_default_context(cafile=certificate)
    server.stop()


async def test_a_pinned_https_connection_verifies_the_certificate_of_the_name_asked_for(
    tls_server: tuple[int, ssl.SSLContext],
) -> None:
    port, trusted = tls_server
    resolver = resolving(**{"secure.example": [PUBLIC], "other.example": [PUBLIC]})
    answer = await fetch(
        f"https://secure.example:{port}/page", AS_IF_PUBLIC, resolver=resolver, verify=trusted
    )
    # Connected to the checked address; the handshake (SNI and the certificate check) used the name.
    assert answer.text == f"served by {PUBLIC} for host secure.example:{port}"
    with pytest.raises(EgressError, match="could not be fetched"):  # the same address, another name
        await fetch(f"https://other.example:{port}/page", AS_IF_PUBLIC, resolver=resolver, verify=trusted)
    with pytest.raises(EgressError, match="could not be fetched"):  # the system's trust store: unknown issuer
        await fetch(f"https://secure.example:{port}/page", AS_IF_PUBLIC, resolver=resolver)
