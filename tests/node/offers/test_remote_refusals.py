"""A peer's offer with a wrong type anywhere is refused as malformed (a
``RemoteOfferError``, which no retry can mend), never read into a crash."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from node.follows import actions
from node.offers.remote import RemoteOffer, RemoteOfferError
from node.offers.wire import from_proposal
from node.storage.tables import inbox_activities
from tests.node.offers.test_wire import fixture, proposal
from tests.node.web.test_inbox import post
from tests.support.network import Network

HOSTILE: list[Any] = [
    None,
    True,
    0,
    -1,
    10**40,
    -(10**40),
    1.5,
    "",
    "\x00",
    "\ud800",
    "x" * 5000,
    [],
    ["x"],
    {},
    {"x": 1},
    [[[[[]]]]],
]


def read(document: Any) -> RemoteOffer | RemoteOfferError:
    try:
        return from_proposal(document)
    except RemoteOfferError as exc:
        return exc


@pytest.mark.parametrize("term", ["nameMap", "contentMap"])
@pytest.mark.parametrize("value", [5, 1.5, True, None, ["Pommes"], {"text": "Pommes"}])
def test_a_language_map_with_a_text_that_is_not_a_string_is_refused(term: str, value: Any) -> None:
    document = proposal()
    document[term] = {"en": "Organic apples", "fr": value}

    with pytest.raises(RemoteOfferError) as raised:
        from_proposal(document)

    assert raised.value.reason.startswith(f"{term}.fr: "), raised.value.reason


@pytest.mark.parametrize("term", ["nameMap", "contentMap", "summaryMap"])
def test_a_language_map_that_is_not_an_object_is_refused_or_ignored(term: str) -> None:
    document = proposal()
    document[term] = ["Organic apples"]

    outcome = read(document)

    # summaryMap is not read: left out, the offer stands.
    assert isinstance(outcome, RemoteOffer if term == "summaryMap" else RemoteOfferError)


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2027-02-30T00:00:00Z"]
)
def test_an_end_time_out_of_range_is_refused(moment: str) -> None:
    document = proposal()
    document["endTime"] = moment

    with pytest.raises(RemoteOfferError) as raised:
        from_proposal(document)

    assert raised.value.reason.startswith("endTime: ")


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_published_time_out_of_range_is_dropped(moment: str) -> None:
    document = proposal()
    document["published"] = moment

    assert from_proposal(document).published is None


@pytest.mark.parametrize("text", ["Pommes\x00", "Pommes \ud800"])
def test_texts_no_database_can_hold_are_refused(text: str) -> None:
    document = proposal()
    document["nameMap"] = {"fr": text}

    with pytest.raises(RemoteOfferError):
        from_proposal(document)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a document where a value can be swapped."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from paths(item, (*prefix, index))


def swapped(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


def every_swap() -> Iterator[tuple[str, Any]]:
    for name, document in (("ours", proposal()), ("mitra", fixture("mitra_proposal.json"))):
        for path in paths(document):
            for value in HOSTILE:
                yield f"{name}:{'.'.join(map(str, path))}", swapped(document, path, value)


def test_a_wrong_value_at_any_place_of_a_real_offer_is_read_or_refused() -> None:
    crashes = []
    for where, document in every_swap():
        try:
            read(document)
        except Exception as exc:
            crashes.append(f"{where}: {type(exc).__name__}: {exc}")

    assert crashes == []


@pytest.mark.parametrize(
    "change",
    [
        {"nameMap": {"en": 5}},
        {"contentMap": {"en": ["Picked this morning"]}},
        {"nameMap": {"en": {"@value": "Organic apples"}}},
        {"endTime": "9999-12-31T23:59:59-14:00"},
    ],
)
async def test_a_followed_coops_malformed_offer_is_refused_at_once_not_retried(
    network: Network, change: dict[str, Any]
) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()
    actor = f"{beta.base}/actors/coop"
    offer = proposal()
    offer.update(id=f"{beta.base}/offers/bad", attributedTo=actor, **change)
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{beta.base}/activities/bad",
        "type": "Create",
        "actor": actor,
        "object": offer,
    }

    response = await post(network, beta, alpha, activity)
    await network.settle()

    assert response.status_code == 202
    row = await alpha.node.db.read(
        lambda c: c.execute(
            select(
                inbox_activities.c.state,
                inbox_activities.c.attempts,
                inbox_activities.c.last_error,
            ).where(inbox_activities.c.activity_id == activity["id"])
        ).one()
    )
    assert (row.state, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("refused: ")
