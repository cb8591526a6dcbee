"""What the inbox hands to orders: a peer's order for one of our offers (``Offer`` of
an ``Agreement``), the seller's answer to one of ours (``Accept``/``Reject``, or Mitra's
``AcceptAgreement``/``RejectAgreement``), a buyer's ``Undo`` of its order, and a
seller's ``Update`` of an agreement (fulfilled, cancelled).

The kinds look only at the activity's shape and at this node's addresses: an ``Accept``
is an answer to an order when it names one of our ``/orders/`` ids or carries an
``Agreement``, so that follows keep every other ``Accept``.
"""

from __future__ import annotations

from typing import Any

from federation.inbox import actor_id
from node.inbox.feature import Inbound, Kind, anything, object_type
from node.orders import buying, selling
from node.urls import Urls

ORDER = "order"
ORDER_ANSWER = "order-answer"
ORDER_CANCEL = "order-cancel"
AGREEMENT = "agreement"


def _offers_an_agreement(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    return object_type(activity) == "Agreement"


def _answers_our_order(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    result = activity.get("result")
    if isinstance(result, dict) and result.get("type") == "Agreement":
        return True
    target = actor_id(activity.get("object"))
    return target is not None and target.startswith(urls.order(""))


def _undoes_an_offer(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    return object_type(activity) in ("Offer", "OfferAgreement")


def _updates_an_agreement(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    return object_type(activity) == "Agreement"


INBOUND = Inbound(
    name="orders",
    kinds=(
        Kind("Offer", ORDER, _offers_an_agreement),
        Kind("OfferAgreement", ORDER, anything),
        Kind("Accept", ORDER_ANSWER, _answers_our_order),
        Kind("AcceptAgreement", ORDER_ANSWER, anything),
        Kind("Reject", ORDER_ANSWER, _answers_our_order),
        Kind("RejectAgreement", ORDER_ANSWER, anything),
        Kind("Undo", ORDER_CANCEL, _undoes_an_offer),
        Kind("Update", AGREEMENT, _updates_an_agreement),
    ),
    handlers={
        ("Offer", ORDER): selling.receive_order,
        ("OfferAgreement", ORDER): selling.receive_order,
        ("Accept", ORDER_ANSWER): buying.receive_answer,
        ("AcceptAgreement", ORDER_ANSWER): buying.receive_answer,
        ("Reject", ORDER_ANSWER): buying.receive_answer,
        ("RejectAgreement", ORDER_ANSWER): buying.receive_answer,
        ("Undo", ORDER_CANCEL): selling.receive_cancellation,
        ("Update", AGREEMENT): buying.receive_agreement_update,
    },
)
