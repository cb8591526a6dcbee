"""The guarded poster's own HTTP/1.1 connections, against servers that answer badly.

Each server here is a loopback socket scripted byte by byte: what a hostile or broken
inbox may send back (huge or unreadable headers, endless bodies, interim answers, a
connection dropped while idle or mid-answer). Every POST ends in an answer or a
PostFailed, within its deadline, and the next POST of the session still works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field

import pytest
from yarl import URL

from federation import wirepost
from federation.mediatypes import AS2
from federation.netguard import GuardedBackend
from federation.poster import Answer, GuardedPoster, PostFailed, SignedPost

BODY = b'{"id":"https://coop.test/activities/1","type":"Create"}'
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"


@dataclass
class Scripted:
    """A server answering the n-th request it reads with ``answers[n]`` (the last one
    for any request after), then reading the next, or closing when ``close_after``."""

    answers: list[bytes]
    close_after: bool = False
    port: int = 0
    connections: int = 0
    closed: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed += 1


def signed(port: int, path: str = "/inbox", **headers: str) -> SignedPost:
    return SignedPost(
        URL(f"http://127.0.0.1:{port}{path}"),
        {"Content-Type": AS2, "Signature": 'keyId="k",signature="s"', **headers},
        BODY,
    )


def poster() -> GuardedPoster:
    return GuardedPoster(guard=GuardedBackend(allow_loopback=True), user_agent="coopnode/test")


async def serve(
    answers: list[bytes], *, close_after: bool = False
) -> tuple[asyncio.Server, Scripted]:
    state = Scripted(answers, close_after)
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    return server, state


async def test_the_request_goes_out_as_signed_and_connections_are_kept() -> None:
    server, state = await serve([ACCEPTED])
    async with server, poster().session() as session:
        for _ in range(3):
            assert await session.post(signed(state.port, "/users/ana/inbox?x=1")) == Answer(202)

    assert state.connections == 1
    head, _, body = state.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /users/ana/inbox?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{state.port}".encode() in lines
    assert b"User-Agent: coopnode/test" in lines
    assert f"Content-Length: {len(BODY)}".encode() in lines
    assert body == BODY


async def test_a_kept_connection_the_server_dropped_is_replaced_once() -> None:
    # The server closes each connection after its answer without saying so: the next
    # POST finds the kept connection dead, and goes on a new one.
    server, state = await serve(
        [b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"], close_after=True
    )
    async with server, poster().session() as session:
        first = await session.post(signed(state.port))
        await asyncio.sleep(0.05)
        second = await session.post(signed(state.port))

    assert (first, second) == (Answer(202), Answer(202))
    assert state.connections == 2


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # chunked, with a trailer
        (
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            Answer(400),
        ),
        # Retry-After kept, its length bounded
        (
            b"HTTP/1.1 429 Slow\r\nRetry-After: 120\r\nContent-Length: 2\r\n\r\nno",
            Answer(429, "120"),
        ),
        (
            b"HTTP/1.1 503 X\r\nRetry-After: " + b"9" * 5000 + b"\r\nContent-Length: 0\r\n\r\n",
            Answer(503, "9" * wirepost.MAX_RETRY_AFTER),
        ),
        # an interim answer, then the final one
        (b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + ACCEPTED, Answer(202)),
        # a redirect is an answer, not followed
        (
            b"HTTP/1.1 301 Moved\r\nLocation: http://10.0.0.1/\r\nContent-Length: 0\r\n\r\n",
            Answer(301),
        ),
    ],
)
async def test_answers_are_read_whatever_their_framing(answer: bytes, expected: Answer) -> None:
    server, state = await serve([answer, ACCEPTED])
    async with server, poster().session() as session:
        assert await session.post(signed(state.port)) == expected
        assert await session.post(signed(state.port)) == Answer(202)

    assert len(state.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 202 Accepted\r\n\r\nwhatever",  # no length: read until the close
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nabc",  # cut short
    ],
)
async def test_an_answer_whose_connection_closes_after_its_headers_gives_its_status(
    answer: bytes,
) -> None:
    server, state = await serve([answer], close_after=True)
    async with server, poster().session() as session:
        assert await session.post(signed(state.port)) == Answer(202)


async def test_a_large_body_is_not_read_to_its_end() -> None:
    huge = 1024 * 1024
    answer = b"HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\n\r\n" % huge + b"x" * huge
    server, state = await serve([answer, ACCEPTED])
    async with server, poster().session() as session:
        assert await session.post(signed(state.port)) == Answer(202)
        # The connection was dropped; the next POST opens another.
        assert await session.post(signed(state.port)) == Answer(202)

    assert state.connections == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (wirepost.MAX_HEAD + 10) + b"\r\n\r\n", "over"),
        (b"NOT HTTP AT ALL\r\n\r\n", "unreadable answer"),
        (b"HTTP/1.1 202 Accepted\r\nContent-Length: nope\r\n\r\n", "unreadable answer"),
        (b"HTTP/1.1 202 Acc", "mid-answer"),
        (b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", "upgrade"),
    ],
)
async def test_a_bad_answer_fails_the_post_and_the_session_goes_on(
    answer: bytes, message: str
) -> None:
    server, state = await serve([answer, ACCEPTED], close_after=answer.endswith(b"Acc"))
    async with server, poster().session() as session:
        with pytest.raises(PostFailed, match=message):
            await session.post(signed(state.port))
        assert await session.post(signed(state.port)) == Answer(202)


async def test_a_server_that_never_answers_is_cut_off_by_the_callers_deadline() -> None:
    server, state = await serve([b"HTTP/1.1 20", ACCEPTED])
    async with server, poster().session() as session:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await session.post(signed(state.port))
        assert await session.post(signed(state.port)) == Answer(202)

    assert state.connections == 2


async def test_a_server_that_never_answers_is_cut_off_by_the_posts_timeout() -> None:
    # Headers dripped without end: the timeout holds for the whole answer's head.
    server, state = await serve([b"HTTP/1.1 202 Accepted\r\nX-Drip: 1", ACCEPTED])
    async with server, poster().session() as session:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await session.post(signed(state.port), timeout=0.2)
        assert 0.2 <= asyncio.get_running_loop().time() - started < 1.0
        # The connection that timed out is not kept: the next POST gets a new one.
        assert await session.post(signed(state.port), timeout=5) == Answer(202)

    assert state.connections == 2


async def test_a_post_answered_in_time_leaves_no_timer_behind() -> None:
    server, state = await serve([ACCEPTED])
    async with server, poster().session() as session:
        for _ in range(3):
            assert await session.post(signed(state.port), timeout=0.2) == Answer(202)
        # Past the deadlines, the kept connection still serves.
        await asyncio.sleep(0.3)
        assert await session.post(signed(state.port)) == Answer(202)

    assert state.connections == 1


async def test_each_post_in_flight_is_held_to_its_own_deadline() -> None:
    # The session's one timer serves every exchange: one with a later deadline, sent
    # first, must not delay another's earlier one, nor cut off an answer on time.
    server, silent = await serve([b"HTTP/1.1 202 Accepted\r\nX-Drip: 1"])
    answering_server, answering = await serve([ACCEPTED])
    loop = asyncio.get_running_loop()

    async def timed(post: Awaitable[Answer]) -> tuple[Answer | str, float]:
        started = loop.time()
        try:
            return await post, loop.time() - started
        except TimeoutError:
            return "timeout", loop.time() - started

    async with server, answering_server, poster().session() as session:
        late = asyncio.ensure_future(timed(session.post(signed(silent.port), timeout=1.0)))
        await asyncio.sleep(0.05)
        early = asyncio.ensure_future(timed(session.post(signed(silent.port), timeout=0.2)))
        answered = await timed(session.post(signed(answering.port), timeout=0.2))
        (late_outcome, late_took), (early_outcome, early_took) = await asyncio.gather(late, early)

    assert answered[0] == Answer(202)
    assert early_outcome == "timeout"
    assert 0.2 <= early_took < 0.9, early_took  # not held to the later one (1.0 s)
    assert late_outcome == "timeout"
    assert 1.0 <= late_took < 2.0, late_took


@pytest.mark.parametrize(
    "header",
    [
        {"X-Evil": "a\r\nHost: other"},
        {"X-Evil": "nul\0"},
        {"X-\nEvil": "v"},
        # A lone CR or LF: the head's line ends are counted, not searched for.
        {"X-Evil": "a\rb"},
        {"X-Evil": "a\nb"},
        {"X-Evil": "tab\there"},
        {"X-Evil": "del\x7f"},
    ],
)
async def test_a_control_character_never_reaches_the_wire(header: dict[str, str]) -> None:
    server, state = await serve([ACCEPTED])
    async with server, poster().session() as session:
        with pytest.raises(PostFailed, match="control character"):
            await session.post(signed(state.port, **header))

    assert state.requests == []


async def test_a_url_that_is_not_http_is_refused_without_connecting() -> None:
    async with poster().session() as session:
        post = SignedPost(URL("ftp://127.0.0.1/inbox"), {}, BODY)
        with pytest.raises(PostFailed, match="not an http"):
            await session.post(post)


async def test_the_session_closes_every_connection_it_opened() -> None:
    server, state = await serve([ACCEPTED])
    async with server:
        async with poster().session() as session:
            await asyncio.gather(*(session.post(signed(state.port)) for _ in range(5)))
            assert state.closed == 0
        await asyncio.sleep(0.1)

    assert (state.connections, state.closed) == (5, 5)


def test_it_runs_on_uvloop_as_the_node_does() -> None:
    # `coopnode serve` and `coopnode worker` run on uvloop, whose transports are not
    # asyncio's classes.
    uvloop = pytest.importorskip("uvloop")

    async def exchange() -> list[Answer]:
        server, state = await serve([ACCEPTED])
        async with server, poster().session() as session:
            return [await session.post(signed(state.port)) for _ in range(2)]

    assert uvloop.run(exchange()) == [Answer(202), Answer(202)]
