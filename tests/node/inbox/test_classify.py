"""An activity's kind, named once for the route and the worker: what each feature
declares, in the features' order, and the rules the collected table keeps."""

from __future__ import annotations

from typing import Any

import pytest

from node.inbox import handlers
from node.inbox.classify import classify
from node.inbox.feature import Inbound, Kind, anything
from node.runtime import Node
from node.services.inbox import InboxItem
from node.urls import Urls

URLS = Urls("https://alpha.test")
PEER = "https://beta.test/actors/coop"
PROPOSAL = "https://alpha.test/proposals/p1"


def activity(type_: str, obj: Any) -> dict[str, Any]:
    return {"id": "https://beta.test/activities/1", "type": type_, "actor": PEER, "object": obj}


NOTE = {"id": "https://beta.test/notes/1", "type": "Note", "content": "<p>Apples</p>"}
VOTE = {"type": "Note", "name": "For", "inReplyTo": PROPOSAL, "attributedTo": PEER}
QUESTION = {"id": "https://beta.test/proposals/q", "type": "Question", "name": "Budget"}
SUBTOTAL = {"id": "https://beta.test/subtotals/1", "type": "Subtotal", "inReplyTo": PROPOSAL}
OFFER = {"id": "https://beta.test/offers/1", "type": "Proposal", "publishes": {}}
FOLLOW = {"id": "https://alpha.test/follows/1", "type": "Follow", "actor": URLS.actor("coop")}


@pytest.mark.parametrize(
    ("sent", "kind"),
    [
        # A Create: a ballot, a shared proposal, a subtotal, an offer, or nothing wanted.
        (activity("Create", VOTE), "vote"),
        (activity("Create", QUESTION), "proposal"),
        (activity("Create", SUBTOTAL), "subtotal"),
        (activity("Create", OFFER), "offer"),
        (activity("Create", "https://beta.test/offers/1"), "offer"),  # known once fetched
        (activity("Create", {"id": "https://beta.test/offers/1"}), "offer"),
        (activity("Create", NOTE), None),  # a post answering nothing
        # A reply with content is a comment (the thread's handler looks where it goes).
        (activity("Create", {**VOTE, "content": "<p>For</p>"}), "comment"),
        # An Update or Delete of the actor itself comes before any feature's reading.
        (activity("Update", {"id": PEER, "type": "Person"}), "actor"),
        (activity("Delete", PEER), "actor"),
        (activity("Update", QUESTION), "proposal"),
        (activity("Update", NOTE), "offer"),
        (activity("Delete", "https://beta.test/offers/1"), "offer"),
        # Follows, and the answers to ours; a Reject of one of our proposals is governance's.
        (activity("Follow", URLS.actor("coop")), "follow"),
        (activity("Accept", FOLLOW), "follow"),
        (activity("Accept", "https://alpha.test/something"), "follow"),
        (activity("Reject", FOLLOW), "follow"),
        (activity("Reject", PROPOSAL), "proposal"),
        (activity("Reject", {"id": PROPOSAL, "type": "Question"}), "proposal"),
        (activity("Undo", {"id": "https://beta.test/likes/1", "type": "Like"}), "follow"),
        # A boost may relay a comment in a shared proposal's thread; a Flag is a report.
        (activity("Announce", NOTE["id"]), "comment"),
        (activity("Announce", NOTE), "comment"),
        (activity("Flag", [PEER, NOTE["id"]]), "report"),
        # No feature takes these types at all.
        (activity("Like", NOTE["id"]), None),
        (activity("Move", PEER), None),
    ],
)
def test_an_activity_has_the_kind_its_features_declare(
    sent: dict[str, Any], kind: str | None
) -> None:
    assert classify(sent, actor=PEER, urls=URLS) == kind


def test_an_activity_without_a_type_of_text_has_no_kind() -> None:
    assert (
        classify({**activity("Create", OFFER), "type": ["Create"]}, actor=PEER, urls=URLS) is None
    )


def test_every_declared_kind_has_a_handler_or_a_batch() -> None:
    declared = {(k.type, k.name) for kinds in handlers.KINDS.values() for k in kinds}

    assert declared == set(handlers.HANDLERS) | set(handlers.BATCHES)
    # Ballots on a busy vote, and the offers a busy network relays.
    assert set(handlers.BATCHES) == {("Create", "vote"), ("Announce", "relayed")}


async def _nothing(node: Node, item: InboxItem) -> None:
    return None


def test_a_kind_declared_twice_is_refused() -> None:
    twice = Inbound("b", kinds=(Kind("Like", "like", anything),))
    first = Inbound(
        "a", kinds=(Kind("Like", "like", anything),), handlers={("Like", "like"): _nothing}
    )

    with pytest.raises(ValueError, match="declared twice"):
        handlers.collect([first, twice])


def test_a_handler_of_a_kind_nobody_declares_is_refused() -> None:
    with pytest.raises(ValueError, match="nobody declares"):
        handlers.collect([Inbound("a", handlers={("Like", "like"): _nothing})])


def test_a_kind_without_a_handler_is_refused() -> None:
    with pytest.raises(ValueError, match="without a handler"):
        handlers.collect([Inbound("a", kinds=(Kind("Like", "like", anything),))])


async def test_handlers_of_one_kind_run_in_the_features_order_until_one_raises() -> None:
    ran: list[str] = []

    def handler(name: str, fails: bool = False) -> Any:
        async def handle(node: Node, item: InboxItem) -> None:
            ran.append(name)
            if fails:
                raise RuntimeError(name)

        return handle

    key = ("Like", "like")
    dispatch = handlers.collect(
        [
            Inbound("a", kinds=(Kind(*key, anything),), handlers={key: handler("a")}),
            Inbound("b", handlers={key: handler("b", fails=True)}),
            Inbound("c", handlers={key: handler("c")}),
        ]
    )
    item = InboxItem(1, "https://beta.test/activities/1", PEER, "Like", {}, 0)

    with pytest.raises(RuntimeError, match="b"):
        await dispatch.handlers[key](None, item)  # type: ignore[arg-type]
    assert ran == ["a", "b"]


def test_the_first_features_kind_wins() -> None:
    dispatch = handlers.collect(
        [
            Inbound(
                "a", kinds=(Kind("Like", "mine", anything),), handlers={("Like", "mine"): _nothing}
            ),
            Inbound(
                "b",
                kinds=(Kind("Like", "yours", anything),),
                handlers={("Like", "yours"): _nothing},
            ),
        ]
    )

    assert [kind.name for kind in dispatch.kinds["Like"]] == ["mine", "yours"]
