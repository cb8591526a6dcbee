"""Password guessing is slowed down: after five failures a name waits a quarter hour."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from datetime import UTC, datetime

import pytest

from federation.clock import ManualClock
from node.errors import TooManyRequests
from node.web import ratelimit
from node.web.ratelimit import LoginLimiter
from tests.node.members.test_members_store import add
from tests.node.web.ui.test_sessions import Browser
from tests.support.network import Network


async def test_failed_logins_lock_the_name_for_a_while_then_release_it(network: Network) -> None:
    coop = await network.add("alpha.test")
    await add(coop, username="ana", password="correct horse battery")
    await add(coop, username="bea", password="another good one")

    async def login(name: str, password: str) -> tuple[int, dict[str, str], dict[str, str]]:
        response = await coop.request(
            "POST", "/api/v1/login", json={"username": name, "password": password}
        )
        return response.status_code, response.json(), dict(response.headers)

    failures = [(await login("ana", f"guess {n}"))[0] for n in range(5)]
    locked, body, headers = await login("ANA", "correct horse battery")
    other, _, _ = await login("bea", "another good one")
    network.clock.advance(15 * 60)
    released, _, _ = await login("ana", "correct horse battery")

    assert failures == [422] * 5
    assert locked == 429  # even with the right password, and whatever the case
    assert "try again in 15 min" in body["reason"]
    assert headers["retry-after"] == "900"
    assert other == 201  # another name from the same address is not held up
    assert released == 201


def test_one_address_guessing_many_names_is_held_up_too() -> None:
    clock = ManualClock(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    limiter = LoginLimiter(clock)
    for n in range(20):
        limiter.attempt(f"name{n}", "203.0.113.7")

    with pytest.raises(TooManyRequests):
        limiter.attempt("someone-else", "203.0.113.7")
    limiter.attempt("someone-else", "198.51.100.2")  # another address is not
    clock.advance(15 * 60)
    limiter.attempt("someone-else", "203.0.113.7")


def test_a_success_takes_back_its_own_count_from_the_address() -> None:
    clock = ManualClock(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    limiter = LoginLimiter(clock)
    for n in range(19):
        limiter.attempt(f"name{n}", "203.0.113.7")
    counted_at = limiter.attempt("ana", "203.0.113.7")  # the twentieth: the address is full

    limiter.succeeded("ana", "203.0.113.7", counted_at)

    limiter.attempt("bea", "203.0.113.7")  # the right password freed its place
    with pytest.raises(TooManyRequests):
        limiter.attempt("carla", "203.0.113.7")


async def test_concurrent_wrong_guesses_cannot_slip_the_right_password_past_the_limit(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    await add(coop, username="ana", password="correct horse battery")

    async def login(password: str) -> int:
        response = await coop.request(
            "POST", "/api/v1/login", json={"username": "ana", "password": password}
        )
        return response.status_code

    # Sixty wrong guesses in flight at once, the right password sent last among them.
    statuses = await asyncio.gather(
        *(login(f"guess {n}") for n in range(60)), login("correct horse battery")
    )
    afterwards = await login("correct horse battery")

    assert statuses[:5] == [422] * 5  # only five guesses reach the password check
    assert set(statuses[5:]) == {429}  # the right one included: it came after the limit
    assert afterwards == 429


async def test_the_right_password_within_the_limit_logs_in_among_concurrent_guesses(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    await add(coop, username="ana", password="correct horse battery")

    async def login(password: str) -> int:
        response = await coop.request(
            "POST", "/api/v1/login", json={"username": "ana", "password": password}
        )
        return response.status_code

    statuses = await asyncio.gather(
        *(login(f"guess {n}") for n in range(4)), login("correct horse battery")
    )

    assert statuses == [422, 422, 422, 422, 201]


async def test_the_login_page_holds_concurrent_guesses_to_the_same_limit(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    await add(coop, username="ana", password="correct horse battery")
    browser = Browser(network, coop)
    token = await browser.form_token("/login")

    async def login(password: str) -> int:
        form = {"csrf": token, "username": "ana", "password": password, "next": "/me"}
        return (await browser.http.post("/login", data=form)).status_code

    statuses = await asyncio.gather(
        *(login(f"guess {n}") for n in range(60)), login("correct horse battery")
    )

    assert statuses[:5] == [400] * 5  # the page's "wrong password"
    assert set(statuses[5:]) == {429}


def _limiter(monkeypatch: pytest.MonkeyPatch, max_keys: int) -> tuple[ManualClock, LoginLimiter]:
    """A limiter with a small table, so that a flood is quick to send."""
    monkeypatch.setattr(ratelimit, "MAX_KEYS", max_keys)
    clock = ManualClock(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    return clock, LoginLimiter(clock)


def _lock(limiter: LoginLimiter, name: str, address: str) -> None:
    for _ in range(5):
        limiter.attempt(name, address)
    with pytest.raises(TooManyRequests):
        limiter.attempt(name, address)


def test_a_locked_name_stays_locked_through_a_flood_from_one_ipv6_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, limiter = _limiter(monkeypatch, max_keys=100)
    _lock(limiter, "ana", "2001:db8:1:2::7")

    # A random name from a fresh address of the same /64 each time.
    for n in range(1_000):
        with contextlib.suppress(TooManyRequests):
            limiter.attempt(f"guess-{n}", f"2001:db8:1:2:{n:x}:{n:x}::1")

    with pytest.raises(TooManyRequests, match="for this name"):
        limiter.attempt("ana", "198.51.100.9")


def test_a_locked_name_stays_locked_through_a_flood_of_names_and_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, limiter = _limiter(monkeypatch, max_keys=100)
    _lock(limiter, "ana", "198.51.100.1")

    for n in range(1_000):  # every guess from its own network: none is ever held up
        limiter.attempt(f"guess-{n}", str(ipaddress.IPv4Address("10.0.0.0") + n))

    with pytest.raises(TooManyRequests, match="for this name"):
        limiter.attempt("ana", "198.51.100.9")
    assert len(limiter) <= 100  # and the flood still costs bounded memory


def test_a_flood_of_locked_names_still_costs_bounded_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, limiter = _limiter(monkeypatch, max_keys=100)
    for n in range(300):
        _lock(limiter, f"name-{n}", str(ipaddress.IPv4Address("10.0.0.0") + n))

    assert len(limiter) <= 100
    with pytest.raises(TooManyRequests):  # the latest locks are the ones kept
        limiter.attempt("name-299", "198.51.100.9")


def test_addresses_in_one_ipv6_network_share_a_count() -> None:
    clock = ManualClock(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    limiter = LoginLimiter(clock)
    for n in range(20):
        limiter.attempt(f"name{n}", f"2001:db8:1:2:{n:x}::{n:x}")

    with pytest.raises(TooManyRequests, match="for this address"):
        limiter.attempt("someone-else", "2001:db8:1:2:ffff:ffff:ffff:ffff")
    limiter.attempt("someone-else", "2001:db8:1:3::1")  # the next /64 is another network


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address() -> None:
    clock = ManualClock(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    limiter = LoginLimiter(clock)
    for n in range(10):
        limiter.attempt(f"name{n}", "203.0.113.7")
        limiter.attempt(f"other{n}", "::ffff:203.0.113.7")

    with pytest.raises(TooManyRequests, match="for this address"):
        limiter.attempt("someone-else", "203.0.113.7")
    limiter.attempt("someone-else", "::ffff:203.0.113.8")  # its neighbour is not held up


def test_an_unparsable_address_is_counted_as_it_is() -> None:
    clock = ManualClock(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    limiter = LoginLimiter(clock)
    for n in range(20):
        limiter.attempt(f"name{n}", "testclient")

    with pytest.raises(TooManyRequests, match="for this address"):
        limiter.attempt("someone-else", "testclient")
    limiter.attempt("someone-else", "")


def test_expired_counts_are_forgotten_before_a_live_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, limiter = _limiter(monkeypatch, max_keys=100)
    limiter.attempt("bea", "198.51.100.1")  # bea's first failure, before everyone else's
    clock.advance(60)
    for n in range(45):  # their failures all leave the window before bea's last ones
        limiter.attempt(f"early-{n}", str(ipaddress.IPv4Address("10.0.0.0") + n))
    clock.advance(9 * 60)
    for _ in range(3):
        limiter.attempt("bea", "198.51.100.1")
    clock.advance(6 * 60)  # the early ones have expired; three of bea's four count still

    for n in range(20):  # enough new keys to go over the cap
        limiter.attempt(f"late-{n}", str(ipaddress.IPv4Address("10.1.0.0") + n))

    limiter.attempt("bea", "198.51.100.1")
    limiter.attempt("bea", "198.51.100.1")
    with pytest.raises(TooManyRequests, match="for this name"):
        limiter.attempt("bea", "198.51.100.1")
