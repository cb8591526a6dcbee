"""One rule for every URL that serves both people and servers: a page only to a client
that names ``text/html`` and prefers it (a browser), ActivityStreams to everyone else,
whatever the document (the co-op's actor, a member's, an offer, a proposal). A server
that asks with ``application/json``, ``*/*`` or no ``Accept`` at all must not get a page
from the actor when it gets JSON from the offer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.node.web.ui.test_pages import offer, publish
from tests.support.coops import make_coop
from tests.support.network import Network

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
FOR_SERVERS = [
    "application/activity+json",
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    "application/json",
    "*/*",
    None,
    # Mastodon's and Pleroma's fetches.
    'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    "application/activity+json, application/ld+json",
]
FOR_PEOPLE = [BROWSER, "text/html", "text/html, */*;q=0.1"]


async def documents(network: Network) -> tuple[Any, dict[str, str]]:
    coop = await make_coop(network, local=2, remote=0)
    published = await publish(coop.node, offer())
    proposal = await coop.propose("m0")
    # Each path, by the type its document has (an offer is a ValueFlows Proposal).
    paths = {
        "Group": "/actors/coop",
        "Person": "/actors/m0",
        "Proposal": f"/offers/{published['id']}",
        "Question": f"/proposals/{proposal['id']}",
    }
    return coop.node, paths


def headers(accept: str | None) -> dict[str, str]:
    return {} if accept is None else {"Accept": accept}


@pytest.mark.parametrize("accept", FOR_SERVERS)
async def test_servers_get_activitystreams_from_every_document(
    network: Network, accept: str | None
) -> None:
    node, paths = await documents(network)
    for kind, path in paths.items():
        response = await node.get(path, headers=headers(accept))
        assert response.status_code == 200, (kind, response.text)
        assert response.headers["content-type"].startswith("application/activity+json"), kind
        assert "Accept" in response.headers["vary"]
        assert kind in str(response.json()["type"]), kind


@pytest.mark.parametrize("accept", FOR_SERVERS)
async def test_the_profile_address_leads_servers_to_the_actor(
    network: Network, accept: str | None
) -> None:
    coop = await network.add("alpha.test")

    response = await coop.get("/@coop", headers=headers(accept))

    assert response.status_code == 302
    assert response.headers["location"] == f"{coop.base}/actors/coop"


@pytest.mark.parametrize("accept", FOR_PEOPLE)
async def test_browsers_get_pages_from_every_document(network: Network, accept: str) -> None:
    node, paths = await documents(network)
    for kind, path in paths.items():
        response = await node.get(path, headers=headers(accept))
        assert response.status_code == 200, (kind, response.text)
        assert response.headers["content-type"].startswith("text/html"), kind
