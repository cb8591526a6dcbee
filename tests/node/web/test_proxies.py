"""The client's address comes from X-Forwarded-For only when a trusted proxy sends it:
anyone else who sends the header is counted (for login limits) by its own address."""

from __future__ import annotations

import httpx
import pytest

from node.web.proxies import TrustedProxies
from tests.node.members.test_members_store import add
from tests.support.network import Network, TestNode


def from_peer(coop: TestNode, peer: str) -> httpx.AsyncClient:
    """A client whose connection comes from ``peer``, as the node's server would see it."""
    transport = httpx.ASGITransport(app=coop.app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url=coop.base)


async def fail_logins(client: httpx.AsyncClient, forwarded_for: str, count: int) -> list[int]:
    statuses = []
    for n in range(count):
        response = await client.post(
            "/api/v1/login",
            json={"username": f"nobody{n}", "password": "wrong"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        statuses.append(response.status_code)
    return statuses


async def test_a_stranger_cannot_choose_the_address_its_logins_are_counted_by(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    await add(coop, username="ana", password="correct horse battery")
    stranger = from_peer(coop, "203.0.113.50")

    # Twenty failures, each claiming to come from another address.
    failures = await fail_logins(stranger, "192.0.2.1", 20)
    again = await fail_logins(stranger, "192.0.2.99", 1)

    assert failures == [422] * 20
    assert again == [429]  # counted by 203.0.113.50, whatever the header says


async def test_behind_a_trusted_proxy_each_client_is_counted_by_its_own_address(
    network: Network,
) -> None:
    coop = await network.add("alpha.test", trusted_proxies=("10.0.0.0/24",))
    await add(coop, username="ana", password="correct horse battery")
    proxy = from_peer(coop, "10.0.0.7")

    guesser = await fail_logins(proxy, "198.51.100.7", 20)
    held = await fail_logins(proxy, "198.51.100.7", 1)
    # A guesser who prepends an address of its own still gets the proxy's word for it.
    spoofed = await fail_logins(proxy, "192.0.2.44, 198.51.100.7", 1)
    neighbour = await fail_logins(proxy, "198.51.100.8", 1)

    assert guesser == [422] * 20
    assert held == spoofed == [429]
    assert neighbour == [422]  # another client behind the same proxy is not held up


def test_the_client_is_the_right_most_address_no_trusted_proxy_holds() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "::1"])

    assert proxies.client("203.0.113.9") == "203.0.113.9"
    assert proxies.client("192.0.2.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    assert proxies.client("10.0.0.2, 127.0.0.1") == "10.0.0.2"  # all proxies: the first
    assert proxies.client("2001:DB8::1") == "2001:db8::1"
    assert proxies.client("203.0.113.9, not-an-address, 10.0.0.1") == "10.0.0.1"
    assert proxies.client("\x00\ud800") is None
    assert proxies.client("") is None


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "10.255.0.1"])
def test_proxies_are_trusted_by_address_or_network(peer: str) -> None:
    assert TrustedProxies(["127.0.0.1", "::1", "10.0.0.0/8"]).trusts(peer)


@pytest.mark.parametrize("peer", ["11.0.0.1", "127.0.0.2", "", "testclient", "::2"])
def test_others_are_not(peer: str) -> None:
    assert not TrustedProxies(["127.0.0.1", "::1", "10.0.0.0/8"]).trusts(peer)
