"""Text no column can hold (NUL, an unpaired surrogate) is refused at the door with a
clear 400, by the inbox and by the JSON API, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from node.storage.tables import inbox_activities
from tests.support.network import Network, TestNode

AS2 = "application/activity+json"


def create_note(sender: TestNode, **object_fields: Any) -> dict[str, Any]:
    actor = f"{sender.base}/actors/coop"
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{sender.base}/activities/1",
        "type": "Create",
        "actor": actor,
        "object": {"id": f"{sender.base}/notes/1", "type": "Note", "attributedTo": actor}
        | object_fields,
    }


async def stored(node: TestNode) -> int:
    query = select(func.count()).select_from(inbox_activities)
    return int(await node.node.db.read(lambda c: c.execute(query).scalar_one()))


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"content": "hello \ud800"}, "/inbox"),
        ({"content": "hello \x00"}, "/inbox"),
        ({"\udc00": "a key"}, "/inbox"),
        ({"nul\x00key": "a key"}, "/inbox"),
        ({"tag": [{"type": "Hashtag", "name": "#co\udfffop"}]}, "/inbox"),
        ({"tag": [{"type": "Hashtag", "name": "#co\x00op"}]}, "/actors/coop/inbox"),
        ({"content": "hello \ud800"}, "/actors/coop/inbox"),
    ],
)
async def test_an_activity_holding_unstorable_text_is_refused_and_nothing_is_stored(
    network: Network, fields: dict[str, Any], path: str
) -> None:
    alpha, beta = await network.add("alpha.test"), await network.add("beta.test")
    # json.dumps escapes the text: the body is valid JSON and valid UTF-8.
    body = json.dumps(create_note(beta, **fields)).encode()

    response = await network.http.post(
        alpha.base + path,
        content=body,
        headers={"Content-Type": AS2},
        auth=beta.node.peers.signer,
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "MalformedInput"
    assert "cannot be stored" in response.json()["reason"]
    assert await stored(alpha) == 0


async def test_an_activity_with_emoji_escaped_as_pairs_is_accepted(network: Network) -> None:
    alpha, beta = await network.add("alpha.test"), await network.add("beta.test")
    body = json.dumps(create_note(beta, content="\U0001f600 \u00e9")).encode()
    assert b"\\ud83d\\ude00" in body

    response = await network.http.post(
        alpha.base + "/inbox",
        content=body,
        headers={"Content-Type": AS2},
        auth=beta.node.peers.signer,
    )

    assert response.status_code == 202, response.text
    assert await stored(alpha) == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/api/v1/profile", {"name": "Alpha \ud800"}),
        ("PATCH", "/api/v1/profile", {"summary": "nul \x00 here"}),
        ("POST", "/api/v1/login", {"username": "m0\x00", "password": "x"}),
        ("POST", "/api/v1/login", {"username": "m0\udfff", "password": "x"}),
        ("POST", "/api/v1/members", {"username": "m\ud801", "joined_at": "2026-01-01"}),
        ("POST", "/api/v1/offers", {"title": "a\x00b"}),
        ("POST", "/api/v1/proposals", {"title": "x", "\ud800": "a key"}),
        ("PUT", "/api/v1/colleges", {"colleges": [{"name": "c\x00", "weight": "50%"}]}),
    ],
)
async def test_the_json_api_answers_400_for_unstorable_text_and_changes_nothing(
    network: Network, method: str, path: str, body: dict[str, Any]
) -> None:
    alpha = await network.add("alpha.test")
    before = (await alpha.get("/api/v1/node", headers=alpha.auth)).json()

    response = await alpha.request(
        method,
        path,
        content=json.dumps(body).encode(),
        headers={**alpha.auth, "Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_request"
    assert "cannot be stored" in response.json()["reason"]
    assert (await alpha.get("/api/v1/node", headers=alpha.auth)).json() == before
