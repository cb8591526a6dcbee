"""Fetching remote documents: every hop checked, bounded in time, size and depth.

The peer is a real HTTP server on a loopback port, reached through the guarded
transport with loopback allowed (as in local mode).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from federation.errors import FetchError, InvalidDocument, Refused, RemoteNotFound
from federation.fetch import (
    MAX_DOCUMENT_BYTES,
    MAX_JSON_DEPTH,
    check_url,
    fetch_exact,
    fetch_json,
    resolve_handle,
)
from federation.jsonlimits import exceeds_depth
from federation.netguard import make_guarded_transport

AS2 = "application/activity+json"
Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class Peer:
    """An HTTP/1.1 server on 127.0.0.1 that answers each path as a test tells it."""

    port: int = 0
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(
        self,
        path: str,
        body: bytes,
        *,
        status: str = "200 OK",
        headers: dict[str, str] | None = None,
    ) -> None:
        head = {"Content-Type": AS2, "Content-Length": str(len(body)), **(headers or {})}

        async def handler(writer: asyncio.StreamWriter) -> None:
            writer.write(response_head(status, head) + body)
            await writer.drain()

        self.routes[path] = handler

    def document(self, path: str, document: dict[str, Any], content_type: str = AS2) -> None:
        self.answer(path, json.dumps(document).encode(), headers={"Content-Type": content_type})

    def redirect(self, path: str, location: str, status: str = "302 Found") -> None:
        self.answer(path, b"", status=status, headers={"Location": location})

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            path = request_line.split(" ")[1]
            headers = dict(line.split(": ", 1) for line in lines if ": " in line)
            self.requests.append(Request(path, {k.lower(): v for k, v in headers.items()}))
            route = self.routes.get(path.split("?")[0])
            if route is None:
                writer.write(response_head("404 Not Found", {"Content-Length": "0"}))
            else:
                await route(writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up, as it should on a refused answer
        finally:
            writer.close()
            self._tasks.discard(task)

    def stop_answering(self) -> None:
        for task in self._tasks:
            task.cancel()

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


def response_head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    state = Peer()
    server = await asyncio.start_server(state.serve, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state
        state.stop_answering()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = make_guarded_transport(allow_loopback=True)
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


async def fetch(http: httpx.AsyncClient, url: str, **kwargs: Any) -> dict[str, Any]:
    return await fetch_json(http, url, allow_http=True, **kwargs)


# --- addresses and schemes ----------------------------------------------------------


async def test_a_loopback_peer_is_refused_unless_loopback_is_allowed(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.document("/note", {"id": peer.url("/note"), "type": "Note"})
    transport = make_guarded_transport()

    async with httpx.AsyncClient(transport=transport) as guarded:
        with pytest.raises(FetchError, match=r"forbidden address 127\.0\.0\.1 \(loopback\)"):
            await fetch(guarded, peer.url("/note"))
    assert peer.connections == 0
    assert (await fetch(http, peer.url("/note")))["type"] == "Note"


async def test_a_redirect_into_the_private_network_is_refused(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.redirect("/note", "http://10.0.0.1/latest/meta-data/")

    with pytest.raises(FetchError) as refused:
        await fetch(http, peer.url("/note"))

    assert "forbidden address 10.0.0.1 (private)" in str(refused.value)
    assert "redirected to http://10.0.0.1/latest/meta-data/" in str(refused.value)


async def test_http_is_refused_outside_local_mode(peer: Peer, http: httpx.AsyncClient) -> None:
    peer.document("/note", {"id": peer.url("/note")})

    with pytest.raises(FetchError, match="only https URLs are fetched"):
        await fetch_json(http, peer.url("/note"))

    assert peer.connections == 0


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://x.test/"]
)
async def test_a_redirect_to_another_scheme_is_refused(
    peer: Peer, http: httpx.AsyncClient, location: str
) -> None:
    peer.redirect("/note", location)

    with pytest.raises(FetchError, match="only https and http URLs are fetched"):
        await fetch(http, peer.url("/note"))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.test/",
        "https://user:secret@example.test/",
        "https://[fe80::1%25eth0]/",
        "https://1.2.3.08/",
        "https:///no-host",
        "javascript:alert(1)",
    ],
)
def test_urls_that_are_never_fetched(url: str) -> None:
    with pytest.raises(FetchError):
        check_url(url)


def test_an_https_url_with_a_name_passes_the_url_check() -> None:
    assert check_url("https://example.test/users/a?x=1").host == "example.test"


# --- redirects ----------------------------------------------------------------------


async def test_a_redirect_loop_is_refused(peer: Peer, http: httpx.AsyncClient) -> None:
    peer.redirect("/a", "/b")
    peer.redirect("/b", peer.url("/a"))

    with pytest.raises(FetchError, match=r"redirect loop back to .*/a$"):
        await fetch(http, peer.url("/a"))

    assert peer.paths == ["/a", "/b"]


async def test_more_than_three_redirects_are_refused(peer: Peer, http: httpx.AsyncClient) -> None:
    for hop in range(1, 5):
        peer.redirect(f"/r{hop}", f"/r{hop + 1}")
    peer.document("/r5", {"id": peer.url("/r5")})

    with pytest.raises(FetchError, match="more than 3 redirects"):
        await fetch(http, peer.url("/r1"))

    assert peer.paths == ["/r1", "/r2", "/r3", "/r4"]


async def test_three_redirects_are_followed_and_the_document_fetched_by_its_id(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.redirect("/@ana/1", "/r2", status="301 Moved Permanently")
    peer.redirect("/r2", "/r3", status="307 Temporary Redirect")
    peer.redirect("/r3", "/notes/1", status="308 Permanent Redirect")
    peer.document("/notes/1", {"id": peer.url("/notes/1"), "type": "Note"})

    document = await fetch(http, peer.url("/@ana/1"))

    assert document["id"] == peer.url("/notes/1")
    assert peer.paths == ["/@ana/1", "/r2", "/r3", "/notes/1", "/notes/1"]


async def test_a_redirect_without_location_is_refused(peer: Peer, http: httpx.AsyncClient) -> None:
    peer.answer("/note", b"", status="302 Found")

    with pytest.raises(FetchError, match="302 without a Location"):
        await fetch(http, peer.url("/note"))


# --- what is answered ---------------------------------------------------------------


async def test_a_document_whose_id_is_the_url_is_returned(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.document("/note", {"id": peer.url("/note"), "type": "Note"})

    assert await fetch(http, peer.url("/note")) == {"id": peer.url("/note"), "type": "Note"}
    assert peer.paths == ["/note"]


@pytest.mark.parametrize("content_type", ["text/html", "application/json", "application/ld+json"])
async def test_an_object_fetch_refuses_other_content_types(
    peer: Peer, http: httpx.AsyncClient, content_type: str
) -> None:
    peer.document("/note", {"id": peer.url("/note")}, content_type=content_type)

    with pytest.raises(InvalidDocument, match="not an ActivityStreams document"):
        await fetch(http, peer.url("/note"))


async def test_the_profiled_ld_json_content_type_is_accepted(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    ld = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    peer.document("/note", {"id": peer.url("/note")}, content_type=ld)

    assert (await fetch(http, peer.url("/note")))["id"] == peer.url("/note")


async def test_a_missing_document_is_remote_not_found(peer: Peer, http: httpx.AsyncClient) -> None:
    with pytest.raises(RemoteNotFound, match="answered 404"):
        await fetch(http, peer.url("/gone"))


async def test_a_server_error_is_a_fetch_error(peer: Peer, http: httpx.AsyncClient) -> None:
    peer.answer("/note", b"oops", status="500 Internal Server Error")

    with pytest.raises(FetchError, match="answered 500"):
        await fetch(http, peer.url("/note"))


async def test_a_document_under_another_id_is_fetched_again_by_that_id(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    # Mastodon serves a status at /@user/1 whose id is /users/user/statuses/1.
    peer.document("/@ana/1", {"id": peer.url("/users/ana/statuses/1"), "content": "alias"})
    peer.document("/users/ana/statuses/1", {"id": peer.url("/users/ana/statuses/1")})

    document = await fetch(http, peer.url("/@ana/1"))

    assert document == {"id": peer.url("/users/ana/statuses/1")}
    assert peer.paths == ["/@ana/1", "/users/ana/statuses/1"]


async def test_a_document_that_disowns_its_id_when_fetched_again_is_refused(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.document("/claim", {"id": peer.url("/victim")})
    peer.document("/victim", {"id": peer.url("/elsewhere")})
    peer.document("/elsewhere", {"id": peer.url("/elsewhere")})

    with pytest.raises(InvalidDocument, match="answered one whose id is"):
        await fetch(http, peer.url("/claim"))

    assert peer.paths == ["/claim", "/victim"]


async def test_a_document_without_an_id_is_refused(peer: Peer, http: httpx.AsyncClient) -> None:
    peer.document("/note", {"type": "Note"})

    with pytest.raises(InvalidDocument, match="whose id is None"):
        await fetch(http, peer.url("/note"))


async def test_an_id_in_the_private_network_is_refused_without_fetching_it(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.document("/note", {"id": "http://10.0.0.1/note"})

    with pytest.raises(InvalidDocument, match=r"http://10\.0\.0\.1/note is on another server"):
        await fetch(http, peer.url("/note"))

    assert peer.paths == ["/note"]


async def test_json_that_is_not_an_object_is_refused(peer: Peer, http: httpx.AsyncClient) -> None:
    peer.answer("/note", b"[1, 2]")

    with pytest.raises(InvalidDocument, match="not an object"):
        await fetch(http, peer.url("/note"))


async def test_invalid_json_is_refused(peer: Peer, http: httpx.AsyncClient) -> None:
    peer.answer("/note", b'{"id": ')

    with pytest.raises(InvalidDocument, match="invalid JSON"):
        await fetch(http, peer.url("/note"))


async def test_every_request_is_signed_redirects_and_refetch_included(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    class Signing(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
            request.headers["Signature"] = f"signed {request.url.path}"
            yield request

    peer.redirect("/alias", "/moved")
    peer.document("/moved", {"id": peer.url("/notes/1")})
    peer.document("/notes/1", {"id": peer.url("/notes/1")})

    await fetch(http, peer.url("/alias"), auth=Signing())

    assert [(r.path, r.headers.get("signature")) for r in peer.requests] == [
        ("/alias", "signed /alias"),
        ("/moved", "signed /moved"),
        ("/notes/1", "signed /notes/1"),
    ]


# --- bounded in time, size and depth -------------------------------------------------


async def test_a_peer_dribbling_a_byte_a_second_is_cut_off_at_the_deadline(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    async def dribble(writer: asyncio.StreamWriter) -> None:
        writer.write(response_head("200 OK", {"Content-Type": AS2, "Content-Length": "100"}))
        for byte in b'{"id": "' + b" " * 92:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)

    peer.routes["/slow"] = dribble
    started = time.monotonic()

    with pytest.raises(FetchError, match=r"no complete answer within 1\.5 s"):
        await fetch(http, peer.url("/slow"), deadline=1.5)

    assert time.monotonic() - started < 2.5


async def test_a_body_declared_over_the_cap_is_refused(peer: Peer, http: httpx.AsyncClient) -> None:
    peer.answer("/big", b" " * (2 * MAX_DOCUMENT_BYTES))

    with pytest.raises(InvalidDocument, match=f"declares {2 * MAX_DOCUMENT_BYTES} bytes"):
        await fetch(http, peer.url("/big"))


async def test_a_chunked_body_over_the_cap_is_refused_while_read(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    async def chunked(writer: asyncio.StreamWriter) -> None:
        writer.write(response_head("200 OK", {"Content-Type": AS2, "Transfer-Encoding": "chunked"}))
        chunk = b" " * 65536
        for _ in range(2 * MAX_DOCUMENT_BYTES // len(chunk)):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    peer.routes["/big"] = chunked

    with pytest.raises(InvalidDocument, match=f"sent more than {MAX_DOCUMENT_BYTES} bytes"):
        await fetch(http, peer.url("/big"))


@pytest.mark.parametrize(
    "body",
    [
        b"[" * MAX_DOCUMENT_BYTES,
        b"[" * (MAX_DOCUMENT_BYTES // 2) + b"]" * (MAX_DOCUMENT_BYTES // 2),
        b'{"a": ' * 5000 + b"1" + b"}" * 5000,
        b'{"a": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}",
    ],
    ids=["unclosed", "a megabyte of brackets", "5000 objects", "one level too deep"],
)
async def test_deeply_nested_json_is_refused(
    peer: Peer, http: httpx.AsyncClient, body: bytes
) -> None:
    peer.answer("/deep", body)

    with pytest.raises(InvalidDocument, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        await fetch(http, peer.url("/deep"))


async def test_json_nested_to_the_limit_is_accepted(peer: Peer, http: httpx.AsyncClient) -> None:
    inner = b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1)
    peer.answer("/deep", b'{"id": "%s", "a": %s}' % (peer.url("/deep").encode(), inner))

    assert (await fetch(http, peer.url("/deep")))["id"] == peer.url("/deep")


def test_nesting_is_counted_from_one_for_the_outer_value() -> None:
    assert not exceeds_depth({}, 1)
    assert exceeds_depth({"a": []}, 1)
    assert not exceeds_depth({"a": [1, "x", None]}, 2)
    assert exceeds_depth({"a": [{"b": 1}]}, 2)
    assert not exceeds_depth("scalar", 0)


# --- WebFinger -------------------------------------------------------------------------


async def test_a_handle_resolves_over_http_in_local_mode(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    host = f"127.0.0.1:{peer.port}"
    actor_id = peer.url("/actors/ana")
    link = {"rel": "self", "type": AS2, "href": actor_id}
    peer.document(
        "/.well-known/webfinger",
        {"subject": f"acct:ana@{host}", "links": [link]},
        content_type="application/jrd+json",
    )
    peer.document("/actors/ana", {"id": actor_id, "type": "Person"})

    actor = await resolve_handle(http, f"ana@{host}", scheme="http")

    assert actor == {"id": actor_id, "type": "Person"}


# --- where the document ended ----------------------------------------------------------


async def test_a_document_claiming_the_asked_url_from_another_origin_is_refused(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    # An open redirect on the asked origin hands the fetch to another server, whose
    # document then claims to be the URL first asked for.
    elsewhere = f"http://localhost:{peer.port}"
    peer.redirect("/go", f"{elsewhere}/forged")
    peer.document("/forged", {"id": peer.url("/go"), "type": "Note"})

    with pytest.raises(InvalidDocument, match="on another server than"):
        await fetch(http, peer.url("/go"))


async def test_a_document_whose_id_is_on_another_origin_is_refused_without_fetching_it(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.document("/note", {"id": f"http://localhost:{peer.port}/note", "type": "Note"})

    with pytest.raises(InvalidDocument, match="on another server than"):
        await fetch(http, peer.url("/note"))

    assert peer.paths == ["/note"]


async def test_a_redirect_to_a_refused_domain_is_not_followed(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.redirect("/note", f"http://localhost:{peer.port}/moved")
    peer.document("/moved", {"id": f"http://localhost:{peer.port}/moved"})

    def refusal(host: str) -> str | None:
        return f"{host} is blocked" if host == "localhost" else None

    with pytest.raises(Refused, match="localhost is blocked"):
        await fetch(http, peer.url("/note"), refusal=refusal)

    assert peer.paths == ["/note"]


async def test_the_first_url_of_a_refused_domain_is_not_fetched(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.document("/note", {"id": peer.url("/note")})

    with pytest.raises(Refused):
        await fetch(http, peer.url("/note"), refusal=lambda host: "blocked")

    assert peer.connections == 0


# --- a document at exactly its URL ----------------------------------------------------


async def test_an_exact_fetch_follows_no_redirect(peer: Peer, http: httpx.AsyncClient) -> None:
    peer.redirect("/page", "/elsewhere")
    peer.document("/elsewhere", {"id": peer.url("/elsewhere")})

    with pytest.raises(FetchError, match="answered 302"):
        await fetch_exact(http, peer.url("/page"), allow_http=True)

    assert peer.paths == ["/page"]


async def test_an_exact_fetch_refuses_another_id_without_fetching_it(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    peer.document("/page", {"id": peer.url("/other")})
    peer.document("/other", {"id": peer.url("/other")})

    with pytest.raises(InvalidDocument, match="answered a document whose id is"):
        await fetch_exact(http, peer.url("/page"), allow_http=True)

    assert peer.paths == ["/page"]


async def test_an_exact_fetch_takes_the_cap_it_is_given(
    peer: Peer, http: httpx.AsyncClient
) -> None:
    padding = b" " * MAX_DOCUMENT_BYTES
    peer.answer("/page", b'{"id": "%s", "pad": "%s"}' % (peer.url("/page").encode(), padding))
    cap = 2 * MAX_DOCUMENT_BYTES

    page = await fetch_exact(http, peer.url("/page"), max_bytes=cap, allow_http=True)
    with pytest.raises(InvalidDocument, match=f"over {MAX_DOCUMENT_BYTES}"):
        await fetch_exact(http, peer.url("/page"), allow_http=True)

    assert page["id"] == peer.url("/page")
