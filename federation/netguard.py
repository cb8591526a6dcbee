"""Refusing to connect to addresses inside our own network.

Peers choose the URLs we fetch (actor ids, key ids, inboxes, redirect targets). Unguarded,
an actor id on ``https://evil.example/`` that resolves to 10.0.0.5, or a redirect to
``http://169.254.169.254/``, would turn the node into a proxy into its own network.

The guard lives in the network backend under httpx, not in front of it: the backend
resolves the name itself, checks every address, and connects to an address it has
checked. Checking a name and then letting the socket layer resolve it again would let
DNS rebinding answer a public address to the check and a private one to the connect.
TLS still verifies the certificate against the host name in the URL: httpcore hands the
origin's host name to ``start_tls`` as ``server_hostname`` whatever address the backend
connected to (``httpcore/_async/connection.py``, ``AsyncHTTPConnection._connect``).

A name with mixed answers is connected through its allowed addresses only; a name whose
addresses are all forbidden is refused. Either way no connection reaches a forbidden
address, and a public site whose DNS also lists a stray private address keeps working.

Mastodon guards the same way: ``Request::Socket`` in ``app/lib/request.rb`` resolves,
drops private addresses and connects to what is left.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import anyio
import httpcore
import httpx

from federation.errors import Refused

__all__ = [
    "ClientGuard",
    "ForbiddenAddress",
    "GuardedBackend",
    "GuardedTransport",
    "IPAddress",
    "Resolver",
    "client_guard",
    "is_forbidden_address",
    "literal_refusal",
    "make_guarded_transport",
    "parse_host_literal",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# First match wins, so a narrow range comes before the wider one holding it.
# https://www.iana.org/assignments/iana-ipv4-special-registry/
_V4_RULES: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/32"), "unspecified"),
    (_V4("0.0.0.0/8"), "this network (0.0.0.0/8)"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared address space (100.64.0.0/10)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "reserved (6to4 relay anycast)"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("255.255.255.255/32"), "broadcast"),
    (_V4("240.0.0.0/4"), "reserved"),
)

# https://www.iana.org/assignments/iana-ipv6-special-registry/
_V6_RULES: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("::/96"), "IPv4-compatible (deprecated)"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64 (64:ff9b:1::/48)"),
    (_V6("::/8"), "reserved"),
    (_V6("100::/64"), "discard-only"),
    (_V6("2001:2::/48"), "benchmarking"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("fc00::/7"), "unique local (fc00::/7)"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local (deprecated)"),
    (_V6("ff00::/8"), "multicast"),
)
_GLOBAL_UNICAST = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")
_IPV4_TRANSLATED = _V6("::ffff:0:0:0/96")


def is_forbidden_address(ip: IPAddress) -> str | None:
    """Why a connection to ``ip`` is refused, or None when it is a public address.

    An IPv6 address that carries an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo)
    is judged by the IPv4 address it reaches: a DNS64 resolver legitimately answers
    ``64:ff9b::`` plus a public address, but ``64:ff9b::a00:1`` is 10.0.0.1.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_refusal(ip)
    return _ipv6_refusal(ip)


def _ipv4_refusal(ip: ipaddress.IPv4Address) -> str | None:
    for network, reason in _V4_RULES:
        if ip in network:
            return reason
    return None if ip.is_global else "reserved"


def _ipv6_refusal(ip: ipaddress.IPv6Address) -> str | None:
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        kind, addresses = embedded
        for inner in addresses:
            reason = _ipv4_refusal(inner)
            if reason is not None:
                if kind == "IPv4-mapped":
                    return f"IPv4-mapped {reason}"
                return f"{kind} embedding a forbidden IPv4 ({inner}: {reason})"
        return None
    for network, reason in _V6_RULES:
        if ip in network:
            return reason
    if ip not in _GLOBAL_UNICAST:
        return "reserved (outside global unicast 2000::/3)"
    return None if ip.is_global else "reserved"


def _embedded_ipv4(
    ip: ipaddress.IPv6Address,
) -> tuple[str, tuple[ipaddress.IPv4Address, ...]] | None:
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", (ip.ipv4_mapped,)
    if ip in _IPV4_TRANSLATED:
        return "IPv4-translated", (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip in _NAT64:
        return "NAT64", (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip.sixtofour is not None:
        return "6to4", (ip.sixtofour,)
    if ip.teredo is not None:
        return "Teredo", ip.teredo
    return None


# --- host literals ----------------------------------------------------------------

_DIGITS = {
    8: frozenset("01234567"),
    10: frozenset("0123456789"),
    16: frozenset("0123456789abcdefABCDEF"),
}


def parse_host_literal(host: str) -> IPAddress | None:
    """The address a URL's host names literally, or None when it is a domain name.

    IPv4 is read the way browsers (the WHATWG URL standard) and ``inet_aton`` read it,
    so ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1:
    the resolver would connect to them, so the guard must see them. IPv6 may be given
    with or without brackets. Raises ValueError for a host that looks numeric but is
    not a valid address, and for IPv6 zone identifiers (``fe80::1%eth0``), which name
    an interface of ours.
    """
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            raise ValueError(f"unbalanced brackets in host {host!r}")
        return _parse_ipv6(host[1:-1])
    if ":" in host:
        return _parse_ipv6(host)
    return _parse_ipv4(host)


def _parse_ipv6(text: str) -> ipaddress.IPv6Address:
    if "%" in text:
        raise ValueError(f"IPv6 zone identifiers are not allowed: {text!r}")
    try:
        return ipaddress.IPv6Address(text)
    except ipaddress.AddressValueError as exc:
        raise ValueError(f"{text!r} is not an IPv6 address") from exc


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    # https://url.spec.whatwg.org/#concept-ipv4-parser
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not _ends_in_number(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError(f"{host!r} has more than four IPv4 parts")
    numbers = [_ipv4_number(part, host) for part in parts]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is out of range for an IPv4 address")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ends_in_number(part: str) -> bool:
    if part and set(part) <= _DIGITS[10]:
        return True
    try:
        _ipv4_number(part, part)
    except ValueError:
        return False
    return True


def _ipv4_number(part: str, host: str) -> int:
    if not part:
        raise ValueError(f"{host!r} has an empty IPv4 part")
    radix = 10
    if part[:2] in ("0x", "0X"):
        radix, part = 16, part[2:]
    elif len(part) > 1 and part[0] == "0":
        radix, part = 8, part[1:]
    if not part:
        return 0
    # int() alone would also take "1_0", " 10" and non-ASCII digits.
    if not set(part) <= _DIGITS[radix]:
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    return int(part, radix)


# --- the network backend ----------------------------------------------------------


class ForbiddenAddress(httpcore.ConnectError, Refused):
    """A connection refused because the host's addresses are all forbidden.

    httpx re-raises it as :class:`httpx.ConnectError` with the same message, keeping
    this exception as ``__cause__`` for callers that need the address and reason.
    """

    def __init__(self, host: str, address: IPAddress, reason: str):
        named = "" if host.strip("[]") == str(address) else f" for {host}"
        super().__init__(f"forbidden address {address} ({reason}){named}")
        self.host = host
        self.address = address
        # The guard's own reason (Refused's ``public`` keeps the whole message).
        self.reason = reason


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses the system resolver gives ``host``, in its order, without repeats."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, connecting only to addresses that are not forbidden.

    ``allow_loopback`` (local mode, tests) lets 127.0.0.0/8 and ::1 through, and nothing
    else: a local node has no business reaching the private network either.
    """

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_loopback = allow_loopback
        self._resolve = resolver
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    def refusal(self, ip: IPAddress) -> str | None:
        """Why this backend will not connect to ``ip``, or None."""
        reason = is_forbidden_address(ip)
        if reason == "loopback" and self.allow_loopback:
            return None
        return reason

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # One timeout covers resolving and every connection attempt.
        try:
            with anyio.fail_after(timeout):
                addresses = await self.allowed_addresses(host, port)
                return await self._connect_first(addresses, port, local_address, socket_options)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc

    async def allowed_addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host`` this backend would connect to, in order.

        Raises :class:`ForbiddenAddress` when every address is forbidden.
        """
        try:
            literal = parse_host_literal(host)
        except ValueError as exc:
            raise httpcore.ConnectError(f"invalid host {host!r}: {exc}") from exc
        if literal is not None:
            addresses: Sequence[IPAddress] = [literal]
        else:
            try:
                addresses = await self._resolve(host, port)
            except (OSError, UnicodeError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            if not addresses:
                raise httpcore.ConnectError(f"{host} has no address")
        allowed = [ip for ip in addresses if self.refusal(ip) is None]
        if not allowed:
            first = addresses[0]
            raise ForbiddenAddress(host, first, self.refusal(first) or "forbidden")
        return allowed

    async def _connect_first(
        self,
        addresses: Sequence[IPAddress],
        port: int,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                # An address literal: anyio connects to it without resolving again.
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not reachable through the guard")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection goes through ``guard``.

    ``guard`` and ``ssl_context`` are public so that a client of another library built
    beside this one (the guarded poster's, aiohttp's) keeps the same guard and
    trusts the same certificates.
    """

    def __init__(
        self, *, guard: GuardedBackend, ssl_context: ssl.SSLContext, limits: httpx.Limits
    ) -> None:
        super().__init__(verify=ssl_context, limits=limits)
        # httpx exposes no way to choose the network backend, so the pool it builds is
        # replaced by an identical one that uses ours. Fail loudly if httpx stops keeping
        # its pool there: a silently unguarded client is the one outcome not allowed.
        if type(getattr(self, "_pool", None)) is not httpcore.AsyncConnectionPool:
            raise RuntimeError(
                "httpx.AsyncHTTPTransport no longer keeps an httpcore.AsyncConnectionPool "
                "in _pool: the address guard cannot be installed"
            )
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=guard,
        )
        self.guard = guard
        self.ssl_context = ssl_context


def make_guarded_transport(
    *,
    allow_loopback: bool = False,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits = DEFAULT_LIMITS,
    resolver: Resolver = system_resolver,
) -> GuardedTransport:
    """An httpx transport whose every connection goes through :class:`GuardedBackend`.

    Give it to ``httpx.AsyncClient(transport=...)``. With an explicit transport httpx
    also ignores proxy environment variables, which would otherwise route around the
    guard.
    """
    ssl_context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
    return GuardedTransport(
        guard=GuardedBackend(allow_loopback=allow_loopback, resolver=resolver),
        ssl_context=ssl_context,
        limits=limits,
    )


@dataclass(frozen=True, slots=True)
class ClientGuard:
    """What another client (the guarded poster, aiohttp's) needs to behave as a guarded
    httpx client does."""

    guard: GuardedBackend
    ssl_context: ssl.SSLContext
    user_agent: str | None
    connect_timeout: float | None


def client_guard(client: httpx.AsyncClient) -> ClientGuard | None:
    """The guard of a client built on :func:`federation.netguard.make_guarded_transport`;
    None for any other client, and for a guarded one that sends some URLs elsewhere
    (mounted transports).

    httpx has no public way to reach a client's transport: its ``_transport`` and
    ``_mounts`` are read here, and nowhere else. Should an httpx release move them, the
    client is simply not recognised, and callers use it as it is: slower, never less
    guarded.
    """
    transport = getattr(client, "_transport", None)
    if not isinstance(transport, GuardedTransport) or getattr(client, "_mounts", None):
        return None
    return ClientGuard(
        guard=transport.guard,
        ssl_context=transport.ssl_context,
        user_agent=client.headers.get("User-Agent"),
        connect_timeout=client.timeout.connect,
    )


def literal_refusal(guard: GuardedBackend, host: str) -> ForbiddenAddress | None:
    """The guard's refusal of the address ``host`` writes literally; None for a name (left
    to the resolver and the socket check) or an allowed address. Raises ValueError for
    a host that looks numeric but is no valid address."""
    literal = parse_host_literal(host)
    if literal is None:
        return None
    reason = guard.refusal(literal)
    return None if reason is None else ForbiddenAddress(host, literal, reason)
