"""Signed POSTs to inboxes: signing as Mastodon expects, and the guarded poster.

Every connection here goes to a server on 127.0.0.1 or is refused before connecting;
other addresses are only ever refused, never contacted.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from yarl import URL

from federation import keys, rfc9421
from federation.clock import ManualClock
from federation.httpsig import sign_request, verify_request
from federation.mediatypes import AS2
from federation.netguard import GuardedBackend, IPAddress, Resolver, make_guarded_transport
from federation.poster import (
    Answer,
    GuardedPoster,
    HttpxPoster,
    InboxSigner,
    Payload,
    Poster,
    PostFailed,
    Rfc9421Signer,
    SignedPost,
    poster_for,
)

NOW = datetime.datetime(2027, 3, 1, 9, 0, 7, tzinfo=datetime.UTC)
KEY_ID = "https://coop.test/actors/coop#main-key"
BODY = b'{"id":"https://coop.test/activities/1","type":"Create"}'
ED25519_PEM = keys.generate_ed25519_private_pem()


@pytest.fixture(scope="module")
def rsa_key() -> keys.PrivateKey:
    return keys.load_own_private_key(keys.generate_rsa_private_pem())


@pytest.fixture
def signer(rsa_key: keys.PrivateKey) -> InboxSigner:
    return InboxSigner(KEY_ID, rsa_key, ManualClock(NOW))


def payload() -> Payload:
    return Payload.of(BODY, AS2)


# --- signing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inbox",
    [
        "https://peer.test/inbox",
        "https://peer.test:443/users/ana/inbox",
        "http://127.0.1.7:8800/inbox/12",
        "https://peer.test/inbox?shared=1&x=%C3%A9",
        "https://bücher.test/users/ä/inbox",
        "https://[2001:db8::1]:8443/inbox",
    ],
)
def test_a_post_is_signed_exactly_as_sign_request_signs_it(
    signer: InboxSigner, rsa_key: keys.PrivateKey, inbox: str
) -> None:
    signed = signer.sign(inbox, payload())

    # RSASSA-PKCS1-v1_5 is deterministic: the same input gives the same signature.
    expected = sign_request("POST", str(signed.url), {}, BODY, KEY_ID, rsa_key, NOW)
    assert signed.headers == {**expected, "Content-Type": AS2}
    assert signed.content == BODY
    assert str(signed.url) == str(httpx.URL(inbox))


async def test_a_signed_post_verifies_with_the_public_key(rsa_key: keys.PrivateKey) -> None:
    signer = InboxSigner(KEY_ID, rsa_key, ManualClock(NOW))
    signed = signer.sign("https://peer.test/inbox?a=1", payload())

    async def lookup(key_id: str) -> keys.PublicKey:
        assert key_id == KEY_ID
        return rsa_key.public_key()

    verified = await verify_request(
        "POST", "/inbox", "a=1", signed.headers, BODY, NOW, key_lookup=lookup
    )
    assert verified.algorithm == "rsa-sha256"
    assert verified.headers == ["(request-target)", "host", "date", "digest"]


async def test_an_ed25519_key_signs_as_hs2019() -> None:
    key = keys.load_own_private_key(keys.generate_ed25519_private_pem())
    signed = InboxSigner(KEY_ID, key, ManualClock(NOW)).sign("https://peer.test/inbox", payload())

    async def lookup(key_id: str) -> keys.PublicKey:
        return key.public_key()

    verified = await verify_request(
        "POST", "/inbox", "", signed.headers, BODY, NOW, key_lookup=lookup
    )
    assert verified.algorithm == "hs2019"


@pytest.mark.parametrize(
    "inbox",
    [
        "https://peer.test/inbox",
        "https://peer.test:443/users/ana/inbox",
        "http://127.0.1.7:8800/inbox/12",
        "https://peer.test/inbox?shared=1&x=%C3%A9",
        "https://bücher.test/users/ä/inbox",
        "https://[2001:db8::1]:8443/inbox",
    ],
)
@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
@pytest.mark.parametrize("body", [BODY, b""], ids=["body", "empty"])
def test_an_rfc9421_post_is_signed_exactly_as_rfc9421_sign_request_signs_it(
    inbox: str, kind: str, body: bytes, rsa_key: keys.PrivateKey
) -> None:
    key = rsa_key if kind == "rsa" else keys.load_own_private_key(ED25519_PEM)
    key_id = 'https://coop.test/actors/"coop"#ed25519-key'
    signed = Rfc9421Signer(key_id, key, ManualClock(NOW)).sign(inbox, Payload.of(body, AS2))

    # Ed25519 and RSASSA-PKCS1-v1_5 are deterministic: the same base, the same signature.
    headers = {"Host": signed.headers["Host"], "Content-Type": AS2}
    expected = rfc9421.sign_request("POST", str(signed.url), headers, body, key_id, key, NOW)
    assert signed.headers == {**headers, **expected}
    assert signed.rfc9421
    assert signed.content == body


def test_the_date_follows_the_clock(rsa_key: keys.PrivateKey) -> None:
    clock = ManualClock(NOW)
    signer = InboxSigner(KEY_ID, rsa_key, clock)

    first = signer.sign("https://peer.test/inbox", payload()).headers["Date"]
    clock.advance(datetime.timedelta(milliseconds=500))
    same_second = signer.sign("https://peer.test/inbox", payload()).headers["Date"]
    clock.advance(datetime.timedelta(seconds=1))
    later = signer.sign("https://peer.test/inbox", payload()).headers["Date"]

    assert first == same_second == "Mon, 01 Mar 2027 09:00:07 GMT"
    assert later == "Mon, 01 Mar 2027 09:00:08 GMT"


async def test_sign_many_signs_on_a_signing_thread_and_returns_failures_in_place(
    signer: InboxSigner,
) -> None:
    threads: list[str] = []
    original = signer.headers

    def recording(url: URL, digest: str) -> dict[str, str]:
        threads.append(threading.current_thread().name)
        return original(url, digest)

    signer.headers = recording  # type: ignore[method-assign]

    signed = await signer.sign_many(
        [("https://a.test/inbox", payload()), ("mailto:x@a.test", payload())]
    )

    assert isinstance(signed[0], SignedPost)
    assert signed[0].url == URL("https://a.test/inbox")
    assert isinstance(signed[1], PostFailed)
    assert "not an http(s) URL" in str(signed[1])
    assert len(threads) == 1
    assert threads[0].startswith("signing_")


# --- a loopback inbox -------------------------------------------------------------


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class InboxServer:
    """An HTTP/1.1 inbox on 127.0.0.1 that answers as told and records what it got."""

    status: int = 202
    extra: dict[str, str] = field(default_factory=dict)
    port: int = 0
    connections: int = 0
    received: list[Received] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ", 2)
                headers = {}
                for header in lines:
                    if header:
                        name, value = header.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(Received(method, target, headers, body))
                close = headers.get("connection", "").lower() == "close"
                extra = {**self.extra, **({"Connection": "close"} if close else {})}
                answer = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write(
                    f"HTTP/1.1 {self.status} X\r\n{answer}content-length: 0\r\n\r\n".encode()
                )
                await writer.drain()
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def serve(state: InboxServer, tls: ssl.SSLContext | None = None) -> asyncio.Server:
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    return server


@pytest.fixture
async def inbox() -> AsyncIterator[InboxServer]:
    state = InboxServer()
    running = await serve(state)
    async with running:
        yield state


def resolving(answers: dict[str, Sequence[str]], asked: list[str] | None = None) -> Resolver:
    """A resolver with fixed answers, standing in for DNS (which a test cannot control)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if asked is not None:
            asked.append(host)
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return [ipaddress.ip_address(a) for a in answers[host]]

    return resolve


def guarded_poster(
    *,
    allow_loopback: bool = False,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> GuardedPoster:
    guard = (
        GuardedBackend(allow_loopback=allow_loopback)
        if resolver is None
        else GuardedBackend(allow_loopback=allow_loopback, resolver=resolver)
    )
    return GuardedPoster(guard=guard, ssl_context=ssl_context, user_agent="coopnode/test")


async def post(poster: Poster, signer: InboxSigner, url: str, *, keep_alive: bool = True) -> Answer:
    async with poster.session() as session:
        return await session.post(signer.sign(url, payload()), keep_alive=keep_alive)


# --- on its own connections: what it sends, what it returns ------------------------


async def test_the_inbox_receives_the_signed_request_as_signed(
    inbox: InboxServer, signer: InboxSigner, rsa_key: keys.PrivateKey
) -> None:
    poster = guarded_poster(allow_loopback=True)

    answer = await post(poster, signer, f"http://127.0.0.1:{inbox.port}/users/ana/inbox?x=1")

    assert answer == Answer(202, None)
    (got,) = inbox.received
    assert (got.method, got.target, got.body) == ("POST", "/users/ana/inbox?x=1", BODY)
    assert got.headers["content-type"] == AS2
    assert got.headers["user-agent"] == "coopnode/test"

    async def lookup(key_id: str) -> keys.PublicKey:
        return rsa_key.public_key()

    path, _, query = got.target.partition("?")
    await verify_request("POST", path, query, got.headers, got.body, NOW, key_lookup=lookup)


async def test_status_and_retry_after_come_back(inbox: InboxServer, signer: InboxSigner) -> None:
    inbox.status, inbox.extra = 503, {"Retry-After": "120"}

    answer = await post(
        guarded_poster(allow_loopback=True), signer, f"http://127.0.0.1:{inbox.port}/i"
    )

    assert answer == Answer(503, "120")


async def test_a_redirect_is_returned_not_followed(inbox: InboxServer, signer: InboxSigner) -> None:
    inbox.status = 307
    inbox.extra = {"Location": f"http://127.0.0.1:{inbox.port}/elsewhere"}

    answer = await post(
        guarded_poster(allow_loopback=True), signer, f"http://127.0.0.1:{inbox.port}/i"
    )

    assert answer.status == 307
    assert [r.target for r in inbox.received] == ["/i"]


@pytest.mark.parametrize(("keep_alive", "connections"), [(True, 1), (False, 2)])
async def test_keep_alive_false_asks_for_the_connection_to_be_closed(
    inbox: InboxServer, signer: InboxSigner, keep_alive: bool, connections: int
) -> None:
    poster = guarded_poster(allow_loopback=True)
    url = f"http://127.0.0.1:{inbox.port}/i"

    async with poster.session() as session:
        for _ in range(2):
            signed = signer.sign(url, payload())
            assert (await session.post(signed, keep_alive=keep_alive)).status == 202

    assert len(inbox.received) == 2
    assert inbox.connections == connections
    closing = [r.headers.get("connection") == "close" for r in inbox.received]
    assert closing == [not keep_alive] * 2


async def test_a_closed_port_is_a_failure_that_is_not_a_refusal(signer: InboxSigner) -> None:
    state = InboxServer()
    server = await serve(state)
    server.close()
    await server.wait_closed()

    with pytest.raises(PostFailed) as failed:
        await post(guarded_poster(allow_loopback=True), signer, f"http://127.0.0.1:{state.port}/i")

    assert failed.value.forbidden is None


# --- the guard, at each step ----------------------------------------------------------


@pytest.mark.parametrize("host", ["10.0.0.1", "169.254.169.254", "192.168.1.1", "[fd12::1]"])
async def test_a_private_address_is_refused_before_connecting(
    signer: InboxSigner, host: str
) -> None:
    asked: list[str] = []
    poster = guarded_poster(allow_loopback=True, resolver=resolving({}, asked))

    with pytest.raises(PostFailed, match=r"^forbidden address ") as refused:
        await post(poster, signer, f"http://{host}:9/inbox")

    assert refused.value.forbidden is not None
    assert str(refused.value.forbidden.address) == host.strip("[]")


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1", "127.1"],
)
async def test_a_loopback_server_is_not_reached_unless_allowed(
    inbox: InboxServer, signer: InboxSigner, host: str
) -> None:
    with pytest.raises(PostFailed, match=r"^forbidden address ") as refused:
        await post(guarded_poster(), signer, f"http://{host}:{inbox.port}/inbox")

    assert refused.value.forbidden is not None
    assert inbox.connections == 0


async def test_the_address_connected_to_is_checked_at_the_socket(
    inbox: InboxServer, signer: InboxSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the checks before it out of the way (the literal check skipped, the guard's
    # resolver answering the forbidden address), the socket check alone refuses.
    async def unfiltered(self: GuardedBackend, host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(host)]

    monkeypatch.setattr("federation.wirepost._Session._literal_refusal", lambda self, host: None)
    monkeypatch.setattr(GuardedBackend, "allowed_addresses", unfiltered)
    asked: list[str] = []
    poster = guarded_poster(resolver=resolving({}, asked))

    with pytest.raises(PostFailed, match=r"forbidden address 127\.0\.0\.1 \(loopback\)") as refused:
        await post(poster, signer, f"http://127.0.0.1:{inbox.port}/inbox")

    assert refused.value.forbidden is not None
    assert asked == []
    assert inbox.connections == 0


@pytest.mark.parametrize(
    "answers", [["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1", "192.168.0.1"], ["::1"]]
)
async def test_a_name_resolving_to_forbidden_addresses_is_refused(
    inbox: InboxServer, signer: InboxSigner, answers: list[str]
) -> None:
    poster = guarded_poster(resolver=resolving({"rebound.test": answers}))

    with pytest.raises(PostFailed, match=r"forbidden address .* for rebound\.test") as refused:
        await post(poster, signer, f"http://rebound.test:{inbox.port}/inbox")

    assert refused.value.forbidden is not None
    assert str(refused.value.forbidden.address) == answers[0]
    assert inbox.connections == 0


async def test_the_guard_resolver_is_the_one_used(inbox: InboxServer, signer: InboxSigner) -> None:
    # peer.test exists only in this resolver: had anything else resolved it, the POST
    # would have failed.
    poster = guarded_poster(allow_loopback=True, resolver=resolving({"peer.test": ["127.0.0.1"]}))

    answer = await post(poster, signer, f"http://peer.test:{inbox.port}/inbox")

    assert answer.status == 202
    assert inbox.received[0].headers["host"] == f"peer.test:{inbox.port}"


async def test_a_name_with_mixed_answers_is_reached_through_its_allowed_address(
    inbox: InboxServer, signer: InboxSigner
) -> None:
    resolver = resolving({"mixed.test": ["10.0.0.1", "169.254.169.254", "127.0.0.1"]})
    poster = guarded_poster(allow_loopback=True, resolver=resolver)

    answer = await post(poster, signer, f"http://mixed.test:{inbox.port}/inbox")

    assert answer.status == 202
    assert inbox.connections == 1


async def test_proxy_variables_are_ignored(
    inbox: InboxServer, signer: InboxSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://10.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)

    answer = await post(
        guarded_poster(allow_loopback=True), signer, f"http://127.0.0.1:{inbox.port}/i"
    )

    assert answer.status == 202


# --- TLS is checked against the name, not the address -------------------------------


@pytest.fixture
async def tls_inbox(tmp_path: Path) -> AsyncIterator[tuple[InboxServer, ssl.SSLContext]]:
    from tests.federation.test_netguard import certificate_for

    cert_pem, key_pem = certificate_for("peer.test")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    state = InboxServer()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    server_context.sni_callback = lambda sock, name, ctx: state.server_names.append(name)
    client_context = ssl.create_default_context(cadata=cert_pem.decode())
    running = await serve(state, tls=server_context)
    async with running:
        yield state, client_context


async def test_tls_uses_the_url_host_name_for_sni_and_the_certificate(
    tls_inbox: tuple[InboxServer, ssl.SSLContext], signer: InboxSigner
) -> None:
    server, trust = tls_inbox
    resolver = resolving({"peer.test": ["127.0.0.1"]})
    poster = guarded_poster(allow_loopback=True, resolver=resolver, ssl_context=trust)

    answer = await post(poster, signer, f"https://peer.test:{server.port}/inbox")
    with pytest.raises(PostFailed, match="certificate verify failed"):
        await post(poster, signer, f"https://127.0.0.1:{server.port}/inbox")

    assert answer.status == 202
    assert server.server_names[0] == "peer.test"


# --- choosing the poster, and the httpx path -----------------------------------------


async def test_a_guarded_client_gets_the_guarded_poster_with_its_guard() -> None:
    transport = make_guarded_transport(allow_loopback=True)
    async with httpx.AsyncClient(
        transport=transport, headers={"User-Agent": "coopnode/x"}
    ) as client:
        poster = poster_for(client)

    assert isinstance(poster, GuardedPoster)
    assert poster.guard is transport._pool._network_backend  # type: ignore[attr-defined]
    assert poster.guard.allow_loopback


async def test_any_other_client_is_used_as_it_is() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not called")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        assert isinstance(poster_for(client), HttpxPoster)
    async with httpx.AsyncClient() as client:
        assert isinstance(poster_for(client), HttpxPoster)


async def test_the_httpx_poster_sends_the_same_request(signer: InboxSigner) -> None:
    received: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(429, headers={"Retry-After": "30"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        result = await post(HttpxPoster(client), signer, "https://peer.test/inbox")

    assert result == Answer(429, "30")
    (request,) = received
    signed = signer.sign("https://peer.test/inbox", payload())
    assert {k: request.headers[k] for k in signed.headers} == signed.headers
    assert request.content == BODY


async def test_the_httpx_poster_reports_a_refusal_by_the_guard(signer: InboxSigner) -> None:
    async with httpx.AsyncClient(transport=make_guarded_transport()) as client:
        with pytest.raises(PostFailed, match=r"forbidden address 10\.0\.0\.1") as refused:
            await post(HttpxPoster(client), signer, "http://10.0.0.1/inbox")

    assert refused.value.forbidden is not None
