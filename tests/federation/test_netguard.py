"""The address guard: what it refuses, and that it holds on real sockets.

Every connection here goes to a server on 127.0.0.1 or is refused before connecting;
public addresses are only ever classified, never contacted.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from federation.netguard import (
    ForbiddenAddress,
    GuardedBackend,
    IPAddress,
    Resolver,
    is_forbidden_address,
    make_guarded_transport,
    parse_host_literal,
)

LOOPBACK = ipaddress.ip_address("127.0.0.1")


@dataclass
class LoopbackServer:
    """Answers every request with 200 "ok" and counts the connections it accepted."""

    port: int = 0
    connections: int = 0
    server_names: list[str | None] = field(default_factory=list)

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def start(state: LoopbackServer, tls: ssl.SSLContext | None = None) -> asyncio.Server:
    server = await asyncio.start_server(state.answer, "127.0.0.1", 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    return server


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    state = LoopbackServer()
    running = await start(state)
    async with running:
        yield state


def resolving(answers: dict[str, Sequence[str]]) -> Resolver:
    """A resolver with fixed answers, standing in for DNS (which a test cannot control)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return [ipaddress.ip_address(a) for a in answers[host]]

    return resolve


# --- classification: pure ---------------------------------------------------------

FORBIDDEN = [
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared address space (100.64.0.0/10)"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address to refuse, not to bind)
    ("0.1.2.3", "this network (0.0.0.0/8)"),
    ("192.0.0.8", "reserved (IETF protocol assignments)"),
    ("192.0.2.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local (deprecated)"),
    ("fc00::1", "unique local (fc00::/7)"),
    ("fd12:3456::1", "unique local (fc00::/7)"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("100::1", "discard-only"),
    ("::a00:1", "IPv4-compatible (deprecated)"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
    ("::ffff:0:10.0.0.1", "IPv4-translated embedding a forbidden IPv4 (10.0.0.1: private)"),
    ("64:ff9b::a00:1", "NAT64 embedding a forbidden IPv4 (10.0.0.1: private)"),
    ("64:ff9b::7f00:1", "NAT64 embedding a forbidden IPv4 (127.0.0.1: loopback)"),
    ("64:ff9b:1::a00:1", "local-use NAT64 (64:ff9b:1::/48)"),
    ("2002:a00:1::", "6to4 embedding a forbidden IPv4 (10.0.0.1: private)"),
    ("2002:7f00:1::1", "6to4 embedding a forbidden IPv4 (127.0.0.1: loopback)"),
    # Teredo: server 65.54.227.120, client 192.0.2.45 stored inverted (RFC 4380).
    (
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "Teredo embedding a forbidden IPv4 (192.0.2.45: documentation)",
    ),
    ("4000::1", "reserved (outside global unicast 2000::/3)"),
    # Numeric forms a resolver reads as 127.0.0.1, as inet_aton and browsers do.
    ("2130706433", "loopback"),
    ("0x7f.1", "loopback"),
    ("0x7f000001", "loopback"),
    ("0177.0.0.1", "loopback"),
    ("0177.0.1", "loopback"),
    ("127.1", "loopback"),
    ("127.0.0.1.", "loopback"),
    ("[::1]", "loopback"),
    ("0", "unspecified"),
    ("0xa.0.0.1", "private"),
    ("167772161", "private"),
]

PUBLIC = [
    "1.1.1.1",
    "93.184.215.14",
    "2606:4700:4700::1111",
    "2a01:4f8::1",
    "::ffff:1.1.1.1",
    "64:ff9b::101:101",  # NAT64 of 1.1.1.1: what a DNS64 resolver answers
    "2002:101:101::1",  # 6to4 of 1.1.1.1
    "0x01010101",
    "16843009",
]


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN)
def test_a_forbidden_address_is_refused_with_its_reason(host: str, reason: str) -> None:
    address = parse_host_literal(host)

    assert address is not None
    assert is_forbidden_address(address) == reason


@pytest.mark.parametrize("host", PUBLIC)
def test_a_public_address_is_allowed(host: str) -> None:
    address = parse_host_literal(host)

    assert address is not None
    assert is_forbidden_address(address) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0X0.0X0.0X1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.0.0.1", "10.0.0.1"),
        ("0x", "0.0.0.0"),  # noqa: S104
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
    ],
)
def test_numeric_hosts_are_read_as_the_resolver_would(host: str, address: str) -> None:
    assert parse_host_literal(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost",
        "peer.test",
        "0x7g.example",
        "1.2.3.example",
        "xn--bcher-kva.example",
    ],
)
def test_a_domain_name_is_not_an_address(host: str) -> None:
    assert parse_host_literal(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "[fe80::1%eth0]",
        "fe80::1%25eth0",
        "[::1",
        "::1]",
        "[not-ipv6]",
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.65536",
        "4294967296",
        "1.2.3.08",
        "1..2.3",
        "1_0.0.0.1",
        "example.0x7f",
        "١٢٧.0.0.1",
    ],
)
def test_a_host_that_looks_numeric_but_is_no_address_is_rejected(host: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the messages vary by form)
        parse_host_literal(host)


def test_allow_loopback_lets_loopback_through_and_nothing_else() -> None:
    backend = GuardedBackend(allow_loopback=True)

    assert backend.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert backend.refusal(ipaddress.ip_address("127.8.9.10")) is None
    assert backend.refusal(ipaddress.ip_address("::1")) is None
    assert backend.refusal(ipaddress.ip_address("10.0.0.1")) == "private"
    assert backend.refusal(ipaddress.ip_address("192.168.1.1")) == "private"
    assert backend.refusal(ipaddress.ip_address("169.254.169.254")) == "link-local"
    # 0.0.0.0 reaches the local host on Linux, and is not loopback by name.
    assert backend.refusal(ipaddress.IPv4Address(0)) == "unspecified"
    assert backend.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) == "IPv4-mapped loopback"


# --- the backend on real sockets ----------------------------------------------------


@pytest.mark.parametrize("host", [host for host, _ in FORBIDDEN] + ["localhost"])
async def test_the_backend_refuses_every_forbidden_form_before_connecting(
    server: LoopbackServer, host: str
) -> None:
    backend = GuardedBackend()

    with pytest.raises(ForbiddenAddress, match=r"^forbidden address ") as refused:
        await backend.connect_tcp(host, server.port, timeout=2)

    assert refused.value.reason == is_forbidden_address(refused.value.address)
    assert server.connections == 0


async def test_an_httpx_caller_sees_a_connect_error_naming_address_and_reason() -> None:
    async with httpx.AsyncClient(transport=make_guarded_transport()) as http:
        with pytest.raises(httpx.ConnectError) as refused:
            await http.get("http://10.0.0.1/")

    assert str(refused.value) == "forbidden address 10.0.0.1 (private)"
    assert isinstance(refused.value.__cause__, ForbiddenAddress)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "0x7f.1", "2130706433", "127.1", "[::ffff:127.0.0.1]"]
)
async def test_a_loopback_server_is_not_reached_through_the_guarded_transport(
    server: LoopbackServer, host: str
) -> None:
    async with httpx.AsyncClient(transport=make_guarded_transport()) as http:
        with pytest.raises(httpx.ConnectError, match="forbidden address "):
            await http.get(f"http://{host}:{server.port}/")

    assert server.connections == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.1"])
async def test_allow_loopback_reaches_the_loopback_server(
    server: LoopbackServer, host: str
) -> None:
    async with httpx.AsyncClient(transport=make_guarded_transport(allow_loopback=True)) as http:
        response = await http.get(f"http://{host}:{server.port}/")

    assert response.text == "ok"
    assert server.connections == 1


async def test_the_backend_connects_to_the_address_it_checked_not_to_a_new_lookup(
    server: LoopbackServer,
) -> None:
    # peer.test exists only in this resolver: had anything resolved the name again,
    # the connection would have failed.
    resolver = resolving({"peer.test": ["127.0.0.1"]})
    transport = make_guarded_transport(allow_loopback=True, resolver=resolver)

    async with httpx.AsyncClient(transport=transport) as http:
        response = await http.get(f"http://peer.test:{server.port}/")

    assert response.text == "ok"
    assert server.connections == 1


async def test_a_name_rebound_to_loopback_is_refused(server: LoopbackServer) -> None:
    resolver = resolving({"rebound.test": ["127.0.0.1"]})
    backend = GuardedBackend(resolver=resolver)

    with pytest.raises(ForbiddenAddress, match=r"forbidden address 127\.0\.0\.1 \(loopback\)"):
        await backend.connect_tcp("rebound.test", server.port)

    assert server.connections == 0


async def test_a_name_with_mixed_answers_is_connected_through_its_allowed_addresses(
    server: LoopbackServer,
) -> None:
    resolver = resolving({"mixed.test": ["10.0.0.1", "169.254.169.254", "127.0.0.1"]})
    backend = GuardedBackend(allow_loopback=True, resolver=resolver)

    assert await backend.allowed_addresses("mixed.test", server.port) == [LOOPBACK]
    stream = await backend.connect_tcp("mixed.test", server.port, timeout=2)
    await stream.aclose()
    assert server.connections == 1


async def test_a_name_whose_addresses_are_all_forbidden_is_refused_with_the_first() -> None:
    resolver = resolving({"inside.test": ["10.0.0.1", "192.168.0.1"]})
    backend = GuardedBackend(resolver=resolver)

    with pytest.raises(ForbiddenAddress) as refused:
        await backend.connect_tcp("inside.test", 443)

    assert str(refused.value) == "forbidden address 10.0.0.1 (private) for inside.test"


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    backend = GuardedBackend(resolver=resolving({}))

    with pytest.raises(httpcore.ConnectError, match=r"cannot resolve nowhere\.test"):
        await backend.connect_tcp("nowhere.test", 443)


async def test_slow_resolution_counts_against_the_connect_timeout() -> None:
    async def never(host: str, port: int) -> list[IPAddress]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    backend = GuardedBackend(resolver=never)

    with pytest.raises(httpcore.ConnectTimeout):
        await backend.connect_tcp("slow.test", 443, timeout=0.05)


async def test_unix_sockets_are_refused() -> None:
    with pytest.raises(httpcore.ConnectError):
        await GuardedBackend().connect_unix_socket("/run/docker.sock")


def test_the_guarded_transport_replaces_httpx_connection_pool() -> None:
    # Breaks if httpx stops building an httpcore pool in AsyncHTTPTransport._pool, the
    # one place the guard can be installed (make_guarded_transport raises then, too).
    transport = make_guarded_transport()

    pool = transport._pool
    assert type(pool) is httpcore.AsyncConnectionPool
    assert isinstance(pool._network_backend, GuardedBackend)
    assert type(httpx.AsyncHTTPTransport()._pool) is httpcore.AsyncConnectionPool


# --- TLS is checked against the name, not the address -------------------------------


def certificate_for(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[LoopbackServer, ssl.SSLContext]]:
    cert_pem, key_pem = certificate_for("peer.test")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    state = LoopbackServer()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    server_context.sni_callback = lambda sock, name, ctx: state.server_names.append(name)
    client_context = ssl.create_default_context(cadata=cert_pem.decode())
    running = await start(state, tls=server_context)
    async with running:
        yield state, client_context


async def test_tls_uses_the_url_host_name_for_sni_and_the_certificate(
    tls_server: tuple[LoopbackServer, ssl.SSLContext],
) -> None:
    server, trust = tls_server
    transport = make_guarded_transport(
        allow_loopback=True, verify=trust, resolver=resolving({"peer.test": ["127.0.0.1"]})
    )

    async with httpx.AsyncClient(transport=transport) as http:
        response = await http.get(f"https://peer.test:{server.port}/")
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await http.get(f"https://127.0.0.1:{server.port}/")

    assert response.text == "ok"
    assert server.server_names[0] == "peer.test"
