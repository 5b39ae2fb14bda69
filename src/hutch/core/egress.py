"""The one guarded way out to the network, for URLs someone other than the operator chose.

A member's agent may ask to read any URL; without care, that URL reaches the machine's own services
(``http://127.0.0.1:5432``), the private network, or the cloud's metadata endpoint and its credentials.
:func:`fetch` is how Hutch reads such URLs:

- only ``http`` and ``https``;
- the host is resolved once, every address it resolves to is checked, and the connection goes to the
  address that was checked (the TLS handshake and the ``Host`` header still use the name), so a name
  that answers "public" to the check and "private" to the connection gets nowhere;
- numeric spellings (``2130706433``, ``0x7f.1``, ``127.1``) are read as the address they spell, and IPv6
  forms that carry an IPv4 address (``::ffff:127.0.0.1``, ``64:ff9b::7f00:1``, 6to4, Teredo) are judged
  by that address;
- redirects are followed here, a few at most, each target checked the same way;
- the whole exchange has a deadline and the body a size cap (counted after decompression).

The operator opens holes with ``HUTCH_EGRESS_ALLOW`` (hosts or CIDRs) — see :class:`EgressPolicy`.
URLs the operator wrote themselves (a model provider's base URL, the admin alert webhook) do not need
this guard: nobody else can point them anywhere.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import httpcore
import httpcore2
import httpx
import httpx2

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
# (host, port) -> the addresses the host resolves to, as strings.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_TIMEOUT_SECONDS = 15.0
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
SCHEMES = frozenset({"http", "https"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})

METADATA_ADDRESSES = frozenset({ip_address("169.254.169.254"), ip_address("fd00:ec2::254")})
CGNAT = ip_network("100.64.0.0/10")
NAT64 = (ip_network("64:ff9b::/96"), ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ip_network("::/96")
# What glibc's inet_aton reads as an IPv4 address: decimal, octal and hex parts, one to four of them.
NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)
# Credentials meant for the first host are not sent on to another one.
CROSS_ORIGIN_DROPPED = ("authorization", "cookie", "proxy-authorization")


class EgressError(Exception):
    """A fetch failed; the message is one sentence an agent can show or act on."""


class EgressRefused(EgressError):
    """The guard refused a destination; the message starts with ``refused:`` and says why."""


@dataclass(frozen=True)
class EgressPolicy:
    """Where guarded fetches may go besides public addresses.

    ``allow_hosts`` are names (``wiki.internal``, or ``*.corp.example`` for its subdomains) whose
    addresses are not checked; ``allow_networks`` are CIDRs whose addresses are accepted although
    private; ``allow_private`` accepts every address (``HUTCH_WEB_FETCH_ALLOW_PRIVATE``). The scheme,
    redirect, time and size limits hold whatever the policy.
    """

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_private: bool = False

    @classmethod
    def of(cls, entries: Iterable[str], *, allow_private: bool = False) -> EgressPolicy:
        """From ``HUTCH_EGRESS_ALLOW``'s entries: ``EgressPolicy.of(settings.egress_allow, ...)``."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            network = parse_network(entry)
            if network is not None:
                networks.append(network)
            else:
                hosts.add(normalise_host(entry))
        return cls(frozenset(hosts), tuple(networks), allow_private)

    def allows_host(self, host: str) -> bool:
        host = normalise_host(host)
        return host in self.allow_hosts or any(
            entry.startswith("*.") and host.endswith(entry[1:]) for entry in self.allow_hosts
        )

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address, *embedded_ipv4(address)] if isinstance(address, IPv6Address) else [address]
        return any(a.version == n.version and a in n for a in candidates for n in self.allow_networks)


def parse_network(entry: str) -> IPNetwork | None:
    """``10.0.0.0/8``, ``fd00::/8`` or a single address as a network; None for a host name."""
    try:
        return ip_network(entry.strip(), strict=False)
    except ValueError:
        return None


def normalise_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def literal_address(host: str) -> IPAddress | None:
    """The address a host spells, in any form a resolver would accept (``127.1``, ``0x7f000001``)."""
    host = host.strip("[]")
    try:
        return ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if NUMERIC_HOST.match(host):
        try:
            return IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def embedded_ipv4(address: IPv6Address) -> list[IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, compatible, 6to4, Teredo or NAT64 forms."""
    found: list[IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in IPV4_COMPATIBLE and int(address) > 1:  # ``::`` and ``::1`` are themselves
        found.append(IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in network for network in NAT64):
        found.append(IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _own_reason(address: IPAddress) -> str | None:
    if address in METADATA_ADDRESSES:
        return "the cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, IPv4Address) and address in CGNAT:
        return "a shared (carrier-grade NAT) address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why Hutch will not connect to ``address`` unless allowed ("a loopback address"), or None."""
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        for carried in inner:
            reason = _own_reason(carried)
            if reason is not None:
                return f"{reason} ({carried}) in IPv6 form"
        # Mapped, compatible and NAT64 forms reach exactly the IPv4 address they carry.
        if inner and (address.ipv4_mapped or address in IPV4_COMPATIBLE or any(address in n for n in NAT64)):
            return None
    return _own_reason(address)


def check_destination(host: str, addresses: Sequence[str], policy: EgressPolicy) -> IPAddress:
    """The address to connect to for ``host`` once every one it resolved to is acceptable.

    Refusing when any address is unacceptable (rather than picking a good one) keeps a name with one
    public and one private record from being a coin toss.
    """
    if not addresses:
        raise EgressError(f"{host} does not resolve to any address")
    parsed = [ip_address(a.split("%", 1)[0]) for a in addresses]
    if policy.allow_private or policy.allows_host(host):
        return parsed[0]
    for address in parsed:
        reason = blocked_reason(address)
        if reason is not None and not policy.allows_address(address):
            spelled = normalise_host(host).strip("[]") == str(address)
            why = f"{host} is {reason}" if spelled else f"{host} resolves to {reason} ({address})"
            raise EgressRefused(f"refused: {why}; only public addresses are fetched")
    return parsed[0]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class EgressResponse:
    """A fetched answer: the final URL (after redirects), its status, headers and whole body."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def media_type(self) -> str:
        return str(self.headers.get("content-type", "")).split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        declared = CHARSET.search(self.headers.get("content-type", ""))
        try:
            return self.content.decode(declared.group(1) if declared else "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


@dataclass
class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects each host to the address the guard checked for it, and refuses any host it did not."""

    pins: dict[tuple[str, int], str] = field(default_factory=dict)
    inner: httpcore.AsyncNetworkBackend = field(default_factory=httpcore.AnyIOBackend)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = self.pins.get((host, port))
        if address is None:
            raise httpcore.ConnectError(f"refused: {host} was not checked")
        return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused: unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _BodyStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except httpcore.TimeoutException as exc:
            raise httpx.ReadTimeout(str(exc)) from exc
        except httpcore.NetworkError as exc:
            raise httpx.ReadError(str(exc)) from exc

    async def aclose(self) -> None:
        closer = getattr(self._stream, "aclose", None)
        if closer is not None:
            await closer()


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to addresses pinned on it (host, port → checked address)."""

    def __init__(self, *, verify: ssl.SSLContext | None = None) -> None:
        self.backend = _PinnedBackend()
        context = verify if verify is not None else ssl.create_default_context()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=self.backend, retries=0
        )

    def pin(self, host: str, port: int, address: IPAddress) -> None:
        self.backend.pins[(host, port)] = str(address)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            answer = await self._pool.handle_async_request(core_request)
        except httpcore.TimeoutException as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        assert isinstance(answer.stream, AsyncIterable)  # an async pool answers with an async stream
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_BodyStream(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def _port_of(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


async def _pin(url: httpx.URL, transport: PinnedTransport, policy: EgressPolicy, resolver: Resolver) -> None:
    if url.scheme not in SCHEMES:
        raise EgressRefused(f"refused: {url.scheme or 'no'} scheme; only http and https URLs can be fetched")
    host = url.raw_host.decode("ascii")
    if not host:
        raise EgressRefused("refused: the URL has no host")
    port = _port_of(url)
    if (host, port) in transport.backend.pins:  # resolved once per fetch, whatever the redirects
        return
    literal = literal_address(host)
    if literal is not None:
        addresses: Sequence[str] = [str(literal)]
    else:
        try:
            addresses = await resolver(host, port)
        except OSError:
            raise EgressError(f"{host} could not be resolved") from None
    transport.pin(host, port, check_destination(host, addresses, policy))


async def fetch(
    url: str,
    policy: EgressPolicy,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    time_limit: float = DEFAULT_TIMEOUT_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    resolver: Resolver = system_resolver,
    verify: ssl.SSLContext | None = None,
) -> EgressResponse:
    """Fetch ``url`` through the guard; any status comes back, refusals and failures raise.

    Raises :class:`EgressRefused` for a destination the policy refuses (at any redirect) and
    :class:`EgressError` for the rest: no answer within ``time_limit`` seconds in all, a body larger than
    ``max_bytes``, too many redirects, a connection that failed.
    """
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise EgressRefused(f"refused: {url!r} is not a valid URL ({exc})") from None
    transport = PinnedTransport(verify=verify)
    sent_headers = httpx.Headers(headers or {})
    try:
        async with (
            asyncio.timeout(time_limit),
            httpx.AsyncClient(transport=transport, timeout=time_limit, follow_redirects=False) as client,
        ):
            for _ in range(max_redirects + 1):
                await _pin(target, transport, policy, resolver)
                async with client.stream(method, target, headers=sent_headers, content=content) as answer:
                    location = answer.headers.get("location")
                    if answer.status_code in REDIRECTS and location:
                        following = target.join(location)
                        if (following.scheme, following.host, following.port) != (
                            target.scheme, target.host, target.port,
                        ):  # fmt: skip
                            for name in CROSS_ORIGIN_DROPPED:
                                sent_headers.pop(name, None)
                        if answer.status_code == 303 or (answer.status_code < 303 and method == "POST"):
                            method, content = "GET", None  # as browsers do
                        target = following
                        continue
                    body = await _read_capped(answer, max_bytes, url)
                    return EgressResponse(str(target), answer.status_code, answer.headers, body)
            raise EgressError(f"{url} redirects more than {max_redirects} times")
    except TimeoutError:
        raise EgressError(f"{url} did not answer within {time_limit:g} seconds") from None
    except httpx.InvalidURL as exc:
        raise EgressRefused(f"refused: a redirect from {url} is not a valid URL ({exc})") from None
    except httpx.TimeoutException:
        raise EgressError(f"{url} did not answer within {time_limit:g} seconds") from None
    except httpx.HTTPError as exc:
        raise EgressError(f"{url} could not be fetched: {exc}") from None


async def _read_capped(answer: httpx.Response, max_bytes: int, url: str) -> bytes:
    too_large = EgressError(f"{url} answered with more than {max_bytes} bytes; no more than that is read")
    declared = answer.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    parts: list[bytes] = []
    size = 0
    async for part in answer.aiter_bytes():  # decompressed: a small gzip bomb still stops at the cap
        size += len(part)
        if size > max_bytes:
            raise too_large
        parts.append(part)
    return b"".join(parts)


@dataclass(frozen=True)
class CheckedURL:
    """A URL whose host the guard resolved and accepted: where to connect, and whether the operator's
    ``HUTCH_EGRESS_ALLOW`` (or allowing every private address) is what let it through."""

    url: str
    host: str
    port: int
    address: IPAddress
    operator_allowed: bool


async def check_url(url: str, policy: EgressPolicy, *, resolver: Resolver = system_resolver) -> CheckedURL:
    """Resolve ``url``'s host once and check every address, as :func:`fetch` does before connecting.

    Raises :class:`EgressRefused` (a scheme other than http(s), no host, a refused address) or
    :class:`EgressError` (the host does not resolve).
    """
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise EgressRefused(f"refused: {url!r} is not a valid URL ({exc})") from None
    transport = PinnedTransport()
    await _pin(target, transport, policy, resolver)
    host = target.raw_host.decode("ascii")
    port = _port_of(target)
    address = ip_address(transport.backend.pins[(host, port)])
    allowed = (
        policy.allow_private
        or policy.allows_host(host)
        or (blocked_reason(address) is not None and policy.allows_address(address))
    )
    return CheckedURL(str(target), host, port, address, allowed)


@dataclass
class _PinnedBackend2(httpcore2.AsyncNetworkBackend):
    """:class:`_PinnedBackend` for httpx2 (the client library the MCP SDK speaks through)."""

    pins: dict[tuple[str, int], str] = field(default_factory=dict)
    inner: httpcore2.AsyncNetworkBackend = field(default_factory=httpcore2.AnyIOBackend)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        address = self.pins.get((host, port))
        if address is None:
            raise httpcore2.ConnectError(f"refused: {host}:{port} was not checked")
        return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("refused: unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes milliseconds; one context serves every pinned client.
    return ssl.create_default_context()


class PinnedClientFactory:
    """Builds httpx2 clients (what the MCP SDK takes) that connect only to one checked address.

    Made by :func:`pinned_client_factory` once the URL's host was checked: every client it builds sends
    the URL's host to the address that was checked, follows no redirect itself, and refuses any other host
    or port (the SDK follows redirects only within the URL's origin, which stays on the pinned address).
    Its call signature is the SDK's ``McpHttpClientFactory``.
    """

    def __init__(self, checked: CheckedURL, *, verify: ssl.SSLContext | None = None) -> None:
        self.checked = checked
        self._verify = verify

    def __call__(
        self,
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        context = self._verify or _default_ssl_context()
        transport = httpx2.AsyncHTTPTransport(verify=context, trust_env=False, retries=0)
        backend = _PinnedBackend2()
        backend.pins[(self.checked.host, self.checked.port)] = str(self.checked.address)
        # The transport's own pool, rebuilt on the pinned backend (httpx2 takes no backend argument).
        transport._pool = httpcore2.AsyncConnectionPool(
            ssl_context=context, network_backend=backend, retries=0
        )
        return httpx2.AsyncClient(
            transport=transport,
            headers=headers,
            timeout=timeout or httpx2.Timeout(DEFAULT_TIMEOUT_SECONDS, read=300.0),
            auth=auth,
            follow_redirects=False,
            trust_env=False,
        )


async def pinned_client_factory(
    url: str,
    policy: EgressPolicy,
    *,
    resolver: Resolver = system_resolver,
    verify: ssl.SSLContext | None = None,
) -> PinnedClientFactory:
    """Check ``url`` through the guard (raising as :func:`check_url` does) and return a factory of httpx2
    clients pinned to the address it accepted, for connections that last (an MCP session)."""
    return PinnedClientFactory(await check_url(url, policy, resolver=resolver), verify=verify)
