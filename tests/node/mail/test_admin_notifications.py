"""What the admins hear of by email: a co-op asking to follow, a shared proposal
inviting the co-op, an order received, a server failing for a day; and the member who
ordered hears the seller's answer. Each is told once, and only to those it concerns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from node.follows import actions
from node.mail import worker
from node.services import domains
from tests.support.coops import add_member, make_coop, take_part_in, token_for
from tests.support.network import Network, TestNode
from tests.support.smtp import MailServer, mail_server
from tests.support.trade import honey, publish

from .test_notifications import VERIFY_LINK


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    with mail_server() as server:
        yield server


async def subscribe_member(
    node: TestNode, smtp: MailServer, headers: dict[str, str], address: str
) -> None:
    from node.mail import addresses

    response = await node.request(
        "PATCH", "/api/v1/me/notifications", json={"email": address}, headers=headers
    )
    assert response.status_code == 200, response.text
    await worker.run_once(node.node)
    [verification] = smtp.to(address)
    match = VERIFY_LINK.search(verification.text)
    assert match is not None
    assert await addresses.verify(node.node, match.group(1))
    smtp.recorder.received.clear()


async def with_admin(node: TestNode, smtp: MailServer, address: str) -> dict[str, str]:
    admin = await add_member(node, username="admin0", role="admin", joined_at="2026-01-01")
    headers = await token_for(node, admin["id"])
    await subscribe_member(node, smtp, headers, address)
    return headers


async def test_a_follow_request_waiting_is_mailed_to_the_admins_only(
    network: Network, smtp: MailServer
) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test", follow_policy="approve", **smtp.settings())
    await with_admin(beta, smtp, "admin@beta.test")
    member = await add_member(beta, username="plain", joined_at="2026-01-01")
    await subscribe_member(beta, smtp, await token_for(beta, member["id"]), "plain@beta.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()
    [mail] = smtp.received
    assert mail.recipients == ["admin@beta.test"]
    assert mail.subject == "coop@alpha.test asks to follow Co-op beta.test"
    assert f"{beta.base}/admin/federation" in mail.text
    network.clock.advance(timedelta(minutes=10))
    await network.settle()
    assert len(smtp.received) == 1


async def test_an_invitation_to_a_shared_proposal_is_mailed_to_the_admins(
    network: Network, smtp: MailServer
) -> None:
    tourism = await make_coop(network, local=1, remote=0, domain="tourism.test")
    food = await make_coop(network, local=1, remote=0, domain="food.test", **smtp.settings())
    await with_admin(food.node, smtp, "admin@food.test")
    await take_part_in(network, tourism, food)
    await tourism.propose(
        "m0",
        title="Join the regional mobility fund",
        rule="majority",
        threshold=None,
        quorum="0%",
        electorate=["coop@food.test"],
    )
    await network.settle()
    [mail] = smtp.received
    assert mail.subject == (
        "tourism.test invites Co-op food.test to vote on “Join the regional mobility fund”"
    )
    assert f"{food.node.base}/admin/proposals" in mail.text


async def test_orders_are_mailed_to_the_sellers_admins_and_answers_to_the_buyer(
    network: Network, smtp: MailServer
) -> None:
    market = await network.add("market.test", **smtp.settings())
    food = await network.add("food.test", **smtp.settings())
    await with_admin(market, smtp, "admin@market.test")
    await actions.follow(food.node, "coop@market.test")
    await network.settle()
    offer = await publish(market, honey())
    await network.settle()
    paula = await add_member(food, username="paula", joined_at="2026-01-01")
    paula_headers = await token_for(food, paula["id"])
    await subscribe_member(food, smtp, paula_headers, "paula@food.test")
    response = await food.request(
        "POST",
        "/api/v1/orders",
        json={"offer": offer["uri"], "quantity": "6", "delivery": "pickup", "payment": "cash"},
        headers=paula_headers,
    )
    assert response.status_code == 201, response.text
    await network.settle()
    received = smtp.to("admin@market.test")
    assert [m.subject for m in received] == ["New order: 6 piece from food.test"]
    assert f"{market.base}/me/orders/received" in received[0].text
    assert smtp.to("paula@food.test") == []
    listed = await market.request("GET", "/api/v1/orders?received=1", headers=market.auth)
    [held] = listed.json()["received"]
    accepted = await market.request(
        "POST", f"/api/v1/orders/{held['key']}/accept", json={}, headers=market.auth
    )
    assert accepted.status_code == 200, accepted.text
    await network.settle()
    answered = smtp.to("paula@food.test")
    assert [m.subject for m in answered] == ["Your order was accepted"]
    key = response.json()["key"]
    assert f"{food.base}/me/orders/{key}" in answered[0].text


async def test_a_server_failing_for_a_day_is_mailed_once_per_failure(
    network: Network, smtp: MailServer
) -> None:
    node = await network.add("alpha.test", **smtp.settings())
    await with_admin(node, smtp, "admin@alpha.test")
    start = network.clock.now()
    await node.node.db.write(
        lambda conn: domains.record_failure(conn, "down.test", "connection refused", now=start)
    )
    await network.settle()
    assert smtp.received == []  # not yet a day
    network.clock.advance(timedelta(days=1, minutes=1))
    await network.settle()
    [mail] = smtp.received
    assert mail.subject == "down.test has not answered for a day"
    assert "connection refused" in mail.text
    network.clock.advance(timedelta(hours=3))
    await network.settle()
    assert len(smtp.received) == 1
    # It answers, then fails again for a day: a new failure, told again.
    later = network.clock.now()
    await node.node.db.write(lambda conn: domains.record_success(conn, "down.test", now=later))
    await node.node.db.write(
        lambda conn: domains.record_failure(conn, "down.test", "timed out", now=later)
    )
    network.clock.advance(timedelta(days=1, minutes=1))
    await network.settle()
    assert [m.subject for m in smtp.received] == ["down.test has not answered for a day"] * 2
