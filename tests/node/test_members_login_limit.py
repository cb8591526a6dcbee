"""Password guessing is slowed down: after five failures a name waits a quarter hour."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from federation.clock import ManualClock
from node.errors import TooManyRequests
from node.web.ratelimit import LoginLimiter
from tests.node.test_members import add
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
        limiter.check(f"name{n}", "203.0.113.7")
        limiter.failed(f"name{n}", "203.0.113.7")

    with pytest.raises(TooManyRequests):
        limiter.check("someone-else", "203.0.113.7")
    limiter.check("someone-else", "198.51.100.2")  # another address is not
    clock.advance(15 * 60)
    limiter.check("someone-else", "203.0.113.7")
