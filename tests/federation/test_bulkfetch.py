"""Many documents at once: through aiohttp with the httpx client's guard and
fetch_json's rules, anything unusual handed to fetch_json itself.

The peer is the real HTTP server of test_fetch on a loopback port.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from federation.bulkfetch import BulkFetcher
from federation.errors import FetchError, InvalidDocument
from federation.netguard import IPAddress, Resolver, make_guarded_transport
from tests.federation.test_fetch import Peer


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    state = Peer()
    server = await asyncio.start_server(state.serve, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state
        state.stop_answering()


def resolving(answers: dict[str, Sequence[str]]) -> Resolver:
    """A resolver with fixed answers, standing in for DNS (which a test cannot control)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return [ipaddress.ip_address(a) for a in answers[host]]

    return resolve


def guarded(*, allow_loopback: bool = True, resolver: Resolver | None = None) -> httpx.AsyncClient:
    transport = (
        make_guarded_transport(allow_loopback=allow_loopback)
        if resolver is None
        else make_guarded_transport(allow_loopback=allow_loopback, resolver=resolver)
    )
    return httpx.AsyncClient(transport=transport, headers={"User-Agent": "bulk-test"})


async def fetch_all(http: httpx.AsyncClient, *urls: str) -> list[dict[str, Any]]:
    async with BulkFetcher(http, allow_http=True, limit=4).opened() as fetch:
        return list(await asyncio.gather(*(fetch(url) for url in urls)))


@pytest.fixture
def no_fetch_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proves a fetch went through aiohttp: fetch_json is not there to fall back on."""

    async def refuse(*args: object, **kwargs: object) -> dict[str, Any]:
        raise AssertionError("fetch_json was used")

    monkeypatch.setattr("federation.bulkfetch.fetch_json", refuse)


async def test_a_guarded_client_fetches_through_aiohttp(peer: Peer, no_fetch_json: None) -> None:
    for n in range(10):
        peer.document(f"/actors/{n}", {"id": peer.url(f"/actors/{n}"), "type": "Person"})

    async with guarded() as http:
        documents = await fetch_all(http, *(peer.url(f"/actors/{n}") for n in range(10)))

    assert [d["id"] for d in documents] == [peer.url(f"/actors/{n}") for n in range(10)]
    assert {r.headers["user-agent"] for r in peer.requests} == {"bulk-test"}
    assert {r.headers["accept"] for r in peer.requests} == {
        'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/'
        'activitystreams";q=0.9'
    }


async def test_a_redirect_and_another_id_are_left_to_fetch_json(peer: Peer) -> None:
    peer.redirect("/@ana", "/actors/ana")
    peer.document("/actors/ana", {"id": peer.url("/actors/ana")})
    peer.document("/@bo", {"id": peer.url("/actors/bo")})
    peer.document("/actors/bo", {"id": peer.url("/actors/bo")})

    async with guarded() as http:
        ana, bo = await fetch_all(http, peer.url("/@ana"), peer.url("/@bo"))

    assert ana["id"] == peer.url("/actors/ana")
    assert bo["id"] == peer.url("/actors/bo")


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "127.1", "[::ffff:127.0.0.1]"])
async def test_loopback_written_in_the_url_is_refused_before_connecting(
    peer: Peer, host: str
) -> None:
    async with guarded(allow_loopback=False) as http:
        with pytest.raises(FetchError, match=r"forbidden address .*\(.*loopback\)"):
            await fetch_all(http, f"http://{host}:{peer.port}/actors/ana")

    assert peer.connections == 0


async def test_a_name_resolving_to_loopback_is_refused(peer: Peer) -> None:
    resolver = resolving({"rebound.test": ["127.0.0.1"]})
    async with guarded(allow_loopback=False, resolver=resolver) as http:
        with pytest.raises(FetchError, match=r"forbidden address 127\.0\.0\.1 \(loopback\)"):
            await fetch_all(http, f"http://rebound.test:{peer.port}/actors/ana")

    assert peer.connections == 0


async def test_the_guard_resolver_is_the_one_used(peer: Peer, no_fetch_json: None) -> None:
    # peer.test exists only in this resolver.
    peer.document("/actors/ana", {"id": f"http://peer.test:{peer.port}/actors/ana"})
    resolver = resolving({"peer.test": ["127.0.0.1"]})

    async with guarded(resolver=resolver) as http:
        [ana] = await fetch_all(http, f"http://peer.test:{peer.port}/actors/ana")

    assert ana["id"] == f"http://peer.test:{peer.port}/actors/ana"


async def test_http_is_refused_unless_allowed(peer: Peer) -> None:
    async with guarded() as http, BulkFetcher(http).opened() as fetch:
        with pytest.raises(FetchError, match="only https URLs are fetched"):
            await fetch(peer.url("/actors/ana"))

    assert peer.connections == 0


async def test_what_fetch_json_refuses_is_refused(peer: Peer, no_fetch_json: None) -> None:
    peer.document("/page", {"id": peer.url("/page")}, content_type="text/html")
    peer.answer("/big", b" " * (2 * 1024 * 1024))

    async with guarded() as http:
        with pytest.raises(InvalidDocument, match="not an ActivityStreams document"):
            await fetch_all(http, peer.url("/page"))
        with pytest.raises(InvalidDocument, match="declares"):
            await fetch_all(http, peer.url("/big"))
        with pytest.raises(FetchError, match="answered 404"):
            await fetch_all(http, peer.url("/missing"))


async def test_any_other_client_is_used_through_fetch_json() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"id": str(request.url)},
            headers={"Content-Type": "application/activity+json"},
        )

    mock = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=mock) as http, BulkFetcher(http).opened() as fetch:
        document = await fetch("https://peer.test/actors/ana")

    assert document == {"id": "https://peer.test/actors/ana"}
