"""Orders on the wire: FEP-0837 ``Offer(Agreement)``, its ``Accept`` or ``Reject``, and
the two steps FEP-0837 leaves out (a buyer's ``Undo`` of the ``Offer``, a seller's
``Update`` of the ``Agreement`` naming its new status).

The shapes follow the FEP's examples and Mitra, the one server that trades this way in
the wild: amounts are strings, units bare om2 names ("one", "second"), the ``Agreement``
is always embedded in full (Mitra never fetches one), and every activity is addressed to
the counterparty alone, never to the public. A status rides in the agreement's
``preview.name``, as Mitra writes "Open" and "Paid" there.

Builders return plain dicts and parsers take them; nothing here reads a clock, a
database or the network. A peer's activity that cannot be used is refused with
:class:`MalformedOrder`, whose reason names the property.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from federation.errors import MalformedInput
from federation.jsonld import AS_CONTEXT_URL, COOP_NAMESPACE
from federation.origins import origin_of, same_origin
from federation.storable import unstorable_at
from node.offers import currencies
from node.offers.markdown import plain_text
from node.offers.model import MAX_AMOUNT, MAX_DECIMAL_PLACES, MAX_OPTION_TEXT_LENGTH, MAX_URL_LENGTH
from node.offers.validation import decimal_text
from node.offers.vocabulary import (
    OM2_NAMESPACE,
    PRIMARY_FRAGMENT,
    RECIPROCAL_FRAGMENT,
    UNIT_ONE,
    VF_NAMESPACE,
)
from node.offers.wire import format_datetime
from node.orders.model import Terms

__all__ = [
    "ORDER_CONTEXT",
    "Answer",
    "MalformedOrder",
    "ParsedAgreement",
    "ParsedOffer",
    "accept",
    "agreement",
    "agreement_update",
    "order_offer",
    "parse_agreement",
    "parse_agreement_update",
    "parse_answer",
    "parse_order_offer",
    "parse_undo_offer",
    "reject",
    "undo_offer",
]

# An inline context, not the co-op context URL: that one maps ``result`` to a co-op
# term, and an ``Accept``'s ``result`` must stay ActivityStreams' own. ``satisfies`` and
# ``resourceConformsTo`` name things, so they are ids, as ValueFlows defines them.
ORDER_CONTEXT: list[object] = [
    AS_CONTEXT_URL,
    {
        "vf": VF_NAMESPACE,
        "om2": OM2_NAMESPACE,
        "Agreement": "vf:Agreement",
        "Commitment": "vf:Commitment",
        "stipulates": "vf:stipulates",
        "stipulatesReciprocal": "vf:stipulatesReciprocal",
        "satisfies": {"@id": "vf:satisfies", "@type": "@id"},
        "resourceQuantity": "vf:resourceQuantity",
        "resourceConformsTo": {"@id": "vf:resourceConformsTo", "@type": "@id"},
        "hasUnit": "om2:hasUnit",
        "hasNumericalValue": "om2:hasNumericalValue",
        "coop": COOP_NAMESPACE,
        "deliveryOption": "coop:deliveryOption",
        "paymentOption": "coop:paymentOption",
    },
]

OFFER_TYPES = frozenset({"Offer", "OfferAgreement"})  # Mitra and fmatch say OfferAgreement
ACCEPT_TYPES = frozenset({"Accept", "AcceptAgreement"})
REJECT_TYPES = frozenset({"Reject", "RejectAgreement"})

# The statuses this node names in an agreement's preview; peers may name others (Mitra:
# "Open", "Paid"), which are read as they come.
STATUS_ACCEPTED = "Accepted"
STATUS_CANCELLED = "Cancelled"
STATUS_FULFILLED = "Fulfilled"

MAX_NOTE_LENGTH = 2_000  # characters of text, once any HTML is reduced to text
# A note's HTML may be longer than its text, but not without end: nh3 reads all of it.
MAX_NOTE_SOURCE_LENGTH = 20 * MAX_NOTE_LENGTH
MAX_STATUS_LENGTH = 64
MAX_RECIPIENTS = 100
MAX_LINKS = 20
# The longest amount read as text: MAX_AMOUNT has 9 digits, a point and 4 decimals; a
# few leading zeros are tolerated, a megabyte of them is not.
MAX_AMOUNT_TEXT = 40
_AMOUNT_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# An om2 unit's local name ("one", "kilogram", "second", "cubicMetre").
_UNIT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_UNIT_PREFIXES = ("om2:", OM2_NAMESPACE)
_QUANTUM = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)


class MalformedOrder(MalformedInput):
    """A peer's order activity we cannot use; the reason names the property."""


@dataclass(frozen=True, slots=True)
class ParsedOffer:
    """A buyer's ``Offer(Agreement)``, as the seller's node reads it."""

    id: str  # the Offer activity's id, exactly as sent: the Accept or Reject names it
    actor: str
    seller_to: list[str]
    offer_uri: str  # the Proposal the order is for
    quantity: Decimal
    unit: str
    total: Decimal | None
    currency: str | None  # an ISO 4217 code when the URI is one we know, else the URI
    delivery: str | None
    payment: str | None
    note: str

    @property
    def terms(self) -> Terms:
        return Terms(
            offer_uri=self.offer_uri,
            quantity=self.quantity,
            unit=self.unit,
            total=self.total,
            currency=self.currency,
            delivery=self.delivery,
            payment=self.payment,
            note=self.note,
        )


@dataclass(frozen=True, slots=True)
class ParsedAgreement:
    """A finalised ``Agreement``: what the seller agreed to, and its status if named."""

    id: str
    attributed_to: str | None  # the seller; None only for a bare document that omits it
    offer_uri: str
    quantity: Decimal
    unit: str
    total: Decimal | None
    currency: str | None
    status: str | None  # preview.name: "Accepted", "Cancelled", "Fulfilled", Mitra's "Paid"...
    delivery: str | None = None
    payment: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A seller's ``Accept`` or ``Reject`` of an ``Offer``."""

    kind: Literal["accept", "reject"]
    actor: str
    offer_activity: str  # the Offer's id, as the seller names it
    agreement: ParsedAgreement | None  # with an accept only
    note: str  # the seller's words, or the reason of a reject


# --- builders ---------------------------------------------------------------------------


def order_offer(
    terms: Terms, *, id: str, actor: str, seller: str, published: datetime
) -> dict[str, Any]:
    """The buyer's ``Offer`` of an ``Agreement`` for ``terms``, sent to ``seller`` alone.
    The Agreement has no id yet: the seller gives it one when accepting (FEP-0837)."""
    activity: dict[str, Any] = {
        "@context": ORDER_CONTEXT,
        "id": id,
        "type": "Offer",
        "actor": actor,
        "to": [seller],
        "published": format_datetime(published),
    }
    if terms.note:
        activity["content"] = _note_html(terms.note)
    activity["object"] = _agreement_body(terms, agreement_id=None)
    return activity


def agreement(terms: Terms, *, id: str, seller: str, status: str | None = None) -> dict[str, Any]:
    """The finalised ``Agreement`` ``id``, by ``seller``, to embed in an ``Accept`` or an
    ``Update``. ``status`` is named in ``preview.name``, as Mitra names its own."""
    document: dict[str, Any] = {"id": id, "attributedTo": seller}
    document.update(_agreement_body(terms, agreement_id=id))
    if status is not None:
        document["preview"] = {"type": "Note", "name": status}
    return document


def accept(
    *,
    id: str,
    actor: str,
    buyer: str,
    offer_activity: str,
    agreement: dict[str, Any],
    note: str,
    published: datetime,
) -> dict[str, Any]:
    """The seller's ``Accept``: ``object`` is the Offer's id exactly as it came (Mitra
    finds its invoice by it), ``result`` the agreement in full."""
    activity: dict[str, Any] = {
        "@context": ORDER_CONTEXT,
        "id": id,
        "type": "Accept",
        "actor": actor,
        "to": [buyer],
        "published": format_datetime(published),
        "object": offer_activity,
        "result": agreement,
    }
    if note:
        activity["content"] = _note_html(note)
    return activity


def reject(
    *, id: str, actor: str, buyer: str, offer_activity: str, reason: str, published: datetime
) -> dict[str, Any]:
    """The seller's ``Reject``, its ``content`` the reason."""
    activity: dict[str, Any] = {
        "@context": ORDER_CONTEXT,
        "id": id,
        "type": "Reject",
        "actor": actor,
        "to": [buyer],
        "published": format_datetime(published),
        "object": offer_activity,
    }
    if reason:
        activity["content"] = _note_html(reason)
    return activity


def undo_offer(
    *, id: str, actor: str, seller: str, offer_activity: str, published: datetime
) -> dict[str, Any]:
    """The buyer withdraws an order, before or after it was accepted."""
    return {
        "@context": ORDER_CONTEXT,
        "id": id,
        "type": "Undo",
        "actor": actor,
        "to": [seller],
        "published": format_datetime(published),
        "object": {"id": offer_activity, "type": "Offer", "actor": actor},
    }


def agreement_update(
    *, id: str, actor: str, buyer: str, agreement: dict[str, Any], published: datetime
) -> dict[str, Any]:
    """The seller's ``Update`` of an agreement (cancelled, or fulfilled), embedded in full
    since Mitra fetches no agreement."""
    return {
        "@context": ORDER_CONTEXT,
        "id": id,
        "type": "Update",
        "actor": actor,
        "to": [buyer],
        "published": format_datetime(published),
        "object": agreement,
    }


def _agreement_body(terms: Terms, *, agreement_id: str | None) -> dict[str, Any]:
    primary: dict[str, Any] = {
        "type": "Commitment",
        "satisfies": f"{terms.offer_uri}#{PRIMARY_FRAGMENT}",
        "resourceQuantity": _quantity(terms.unit, terms.quantity),
    }
    if agreement_id is not None:
        primary = {"id": f"{agreement_id}#{PRIMARY_FRAGMENT}", **primary}
    body: dict[str, Any] = {"type": "Agreement", "stipulates": primary}
    if terms.total is not None:
        reciprocal: dict[str, Any] = {
            "type": "Commitment",
            "satisfies": f"{terms.offer_uri}#{RECIPROCAL_FRAGMENT}",
        }
        if agreement_id is not None:
            reciprocal = {"id": f"{agreement_id}#{RECIPROCAL_FRAGMENT}", **reciprocal}
        if terms.currency is not None:
            reciprocal["resourceConformsTo"] = _currency_uri(terms.currency)
        reciprocal["resourceQuantity"] = _quantity(UNIT_ONE, terms.total)
        body["stipulatesReciprocal"] = reciprocal
    if terms.delivery is not None:
        body["deliveryOption"] = terms.delivery
    if terms.payment is not None:
        body["paymentOption"] = terms.payment
    return body


def _quantity(unit: str, amount: Decimal) -> dict[str, str]:
    # A string, always: Mitra reads amounts into strings and drops an activity whose
    # amount is a JSON number.
    return {"hasUnit": unit, "hasNumericalValue": decimal_text(amount)}


def _currency_uri(currency: str) -> str:
    return currencies.uri_for(currency) if currencies.is_supported(currency) else currency


def _note_html(text: str) -> str:
    # ``content`` is HTML in ActivityStreams: a member's "<" must reach the peer as text.
    return html.escape(text, quote=False).replace("\n", "<br>")


# --- parsers ----------------------------------------------------------------------------


def parse_order_offer(activity: Any) -> ParsedOffer:
    """A buyer's ``Offer(Agreement)``, or :class:`MalformedOrder`."""
    activity = _activity(activity, OFFER_TYPES, "Offer")
    id = _url(activity.get("id"), "id")
    actor = _actor(activity)
    if not same_origin(id, actor):
        raise MalformedOrder("id: not on the actor's server")
    to = _recipients(activity.get("to"), "to")
    body = _embedded(activity.get("object"), "object")
    stipulated = _stipulations(body, "object")
    return ParsedOffer(
        id=id,
        actor=actor,
        seller_to=to,
        offer_uri=stipulated.offer_uri,
        quantity=stipulated.quantity,
        unit=stipulated.unit,
        total=stipulated.total,
        currency=stipulated.currency,
        delivery=_option(body.get("deliveryOption"), "object.deliveryOption"),
        payment=_option(body.get("paymentOption"), "object.paymentOption"),
        note=_note(activity.get("content"), "content"),
    )


def parse_answer(activity: Any) -> Answer:
    """A seller's ``Accept`` (with the agreement in ``result``) or ``Reject``, or
    :class:`MalformedOrder`. The agreement must be on the seller's own server and, when
    it names its author, be the seller's."""
    activity = _activity(activity, ACCEPT_TYPES | REJECT_TYPES, "Accept or Reject")
    actor = _actor(activity)
    offer_activity = _reference(activity.get("object"), "object")
    note = _note(activity.get("content"), "content")
    if activity["type"] in REJECT_TYPES:
        return Answer("reject", actor, offer_activity, None, note)
    found = _sellers_agreement(activity.get("result"), actor, "result")
    return Answer("accept", actor, offer_activity, found, note)


def parse_agreement(document: Any) -> ParsedAgreement:
    """A finalised ``Agreement`` (with an id), or :class:`MalformedOrder`."""
    return _agreement(_embedded(document, "the agreement"), "")


def parse_agreement_update(activity: Any) -> ParsedAgreement:
    """A seller's ``Update`` of an agreement, or :class:`MalformedOrder`."""
    activity = _activity(activity, frozenset({"Update"}), "Update")
    actor = _actor(activity)
    return _sellers_agreement(activity.get("object"), actor, "object")


def parse_undo_offer(activity: Any) -> str:
    """The id of the ``Offer`` a buyer's ``Undo`` withdraws, or :class:`MalformedOrder`."""
    activity = _activity(activity, frozenset({"Undo"}), "Undo")
    actor = _actor(activity)
    target = activity.get("object")
    if isinstance(target, dict):
        kind = target.get("type")
        if kind is not None and kind not in OFFER_TYPES:
            raise MalformedOrder("object.type: not an Offer")
        owner = target.get("actor")
        if owner is not None and _reference(owner, "object.actor") != actor:
            raise MalformedOrder("object.actor: not the actor of the Undo")
    return _reference(target, "object")


# --- parts of the parsers -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stipulated:
    offer_uri: str
    quantity: Decimal
    unit: str
    total: Decimal | None
    currency: str | None


def _activity(activity: Any, types: frozenset[str], expected: str) -> dict[str, Any]:
    if not isinstance(activity, dict):
        raise MalformedOrder("the activity is not a JSON object")
    where = unstorable_at(activity)
    if where is not None:
        raise MalformedOrder(f"{where}: holds a NUL or an unpaired surrogate")
    kind = activity.get("type")
    if not isinstance(kind, str) or kind not in types:
        raise MalformedOrder(f"type: not {expected}")
    return activity


def _actor(activity: dict[str, Any]) -> str:
    return _url(_reference(activity.get("actor"), "actor"), "actor")


def _reference(value: Any, where: str) -> str:
    """An id given as a string, or as an object with an ``id``."""
    if isinstance(value, dict):
        value = value.get("id")
        where = f"{where}.id"
    if value is None:
        raise MalformedOrder(f"{where}: missing")
    if not isinstance(value, str) or not value:
        raise MalformedOrder(f"{where}: not an id")
    if len(value) > MAX_URL_LENGTH:
        raise MalformedOrder(f"{where}: longer than {MAX_URL_LENGTH} characters")
    return value


def _url(value: Any, where: str) -> str:
    if value is None:
        raise MalformedOrder(f"{where}: missing")
    if not isinstance(value, str):
        raise MalformedOrder(f"{where}: not a string")
    if len(value) > MAX_URL_LENGTH:
        raise MalformedOrder(f"{where}: longer than {MAX_URL_LENGTH} characters")
    if origin_of(value) == "":
        raise MalformedOrder(f"{where}: not an http(s) URL")
    return value


def _recipients(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise MalformedOrder(f"{where}: neither an id nor a list of ids")
    if len(items) > MAX_RECIPIENTS:
        raise MalformedOrder(f"{where}: more than {MAX_RECIPIENTS} recipients")
    return [_reference(item, f"{where}[{n}]") for n, item in enumerate(items)]


def _embedded(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        raise MalformedOrder(f"{where}: missing")
    if not isinstance(value, dict):
        raise MalformedOrder(f"{where}: not an embedded Agreement")
    if value.get("type") != "Agreement":
        raise MalformedOrder(f"{_at(where, 'type')}: not Agreement")
    return value


def _sellers_agreement(value: Any, actor: str, where: str) -> ParsedAgreement:
    found = _agreement(_embedded(value, where), where)
    if not same_origin(found.id, actor):
        raise MalformedOrder(f"{where}.id: not on the actor's server")
    if found.attributed_to is None:
        # Mitra before 5.x leaves the author out; the id's server is the actor's.
        return _with_author(found, actor)
    if found.attributed_to != actor:
        raise MalformedOrder(f"{where}.attributedTo: not the actor")
    return found


def _with_author(found: ParsedAgreement, author: str) -> ParsedAgreement:
    return ParsedAgreement(
        id=found.id,
        attributed_to=author,
        offer_uri=found.offer_uri,
        quantity=found.quantity,
        unit=found.unit,
        total=found.total,
        currency=found.currency,
        status=found.status,
        delivery=found.delivery,
        payment=found.payment,
    )


def _agreement(body: dict[str, Any], where: str) -> ParsedAgreement:
    id = _url(body.get("id"), _at(where, "id"))
    author = body.get("attributedTo")
    attributed_to = None if author is None else _reference(author, _at(where, "attributedTo"))
    stipulated = _stipulations(body, where)
    _links(body.get("url"), _at(where, "url"))
    return ParsedAgreement(
        id=id,
        attributed_to=attributed_to,
        offer_uri=stipulated.offer_uri,
        quantity=stipulated.quantity,
        unit=stipulated.unit,
        total=stipulated.total,
        currency=stipulated.currency,
        status=_status(body.get("preview"), _at(where, "preview")),
        delivery=_option(body.get("deliveryOption"), _at(where, "deliveryOption")),
        payment=_option(body.get("paymentOption"), _at(where, "paymentOption")),
    )


def _stipulations(body: dict[str, Any], where: str) -> _Stipulated:
    primary_where = _at(where, "stipulates")
    primary = _commitment(body.get("stipulates"), primary_where)
    offer_uri = _satisfied(primary, primary_where, PRIMARY_FRAGMENT)
    quantity, unit = _resource_quantity(primary, primary_where, positive=True)
    total: Decimal | None = None
    currency: str | None = None
    reciprocal_value = body.get("stipulatesReciprocal")
    if reciprocal_value is not None:
        reciprocal_where = _at(where, "stipulatesReciprocal")
        reciprocal = _commitment(reciprocal_value, reciprocal_where)
        if _satisfied(reciprocal, reciprocal_where, RECIPROCAL_FRAGMENT) != offer_uri:
            raise MalformedOrder(
                f"{reciprocal_where}.satisfies: not the proposal the primary commitment satisfies"
            )
        total, money_unit = _resource_quantity(reciprocal, reciprocal_where, positive=False)
        if money_unit != UNIT_ONE:
            raise MalformedOrder(f'{reciprocal_where}.resourceQuantity.hasUnit: not "one"')
        currency = _currency(reciprocal.get("resourceConformsTo"), reciprocal_where)
    return _Stipulated(offer_uri, quantity, unit, total, currency)


def _commitment(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        raise MalformedOrder(f"{where}: missing")
    if not isinstance(value, dict):
        raise MalformedOrder(f"{where}: not an embedded Commitment")
    kind = value.get("type")
    if kind is not None and kind != "Commitment":
        raise MalformedOrder(f"{where}.type: not Commitment")
    if "id" in value and not isinstance(value["id"], str):
        raise MalformedOrder(f"{where}.id: not a string")
    return value


def _satisfied(commitment: dict[str, Any], where: str, fragment: str) -> str:
    """The proposal a commitment satisfies: its intent's id without the fragment, which
    must be the one FEP-0837 gives that intent (Mitra builds them so)."""
    intent = _url(commitment.get("satisfies"), f"{where}.satisfies")
    proposal, hash_sign, found = intent.rpartition("#")
    if not hash_sign or found != fragment or not proposal:
        raise MalformedOrder(f'{where}.satisfies: does not end in "#{fragment}"')
    return proposal


def _resource_quantity(
    commitment: dict[str, Any], where: str, *, positive: bool
) -> tuple[Decimal, str]:
    where = f"{where}.resourceQuantity"
    value = commitment.get("resourceQuantity")
    if value is None:
        raise MalformedOrder(f"{where}: missing")
    if not isinstance(value, dict):
        raise MalformedOrder(f"{where}: not an object")
    return _amount(
        value.get("hasNumericalValue"), f"{where}.hasNumericalValue", positive=positive
    ), _unit(value.get("hasUnit"), f"{where}.hasUnit")


def _amount(value: Any, where: str, *, positive: bool) -> Decimal:
    """An exact amount, written as a string (FEP-0837, Mitra) or a JSON integer. A JSON
    number with a fraction was a float before it reached us, so it is refused rather
    than guessed at."""
    if value is None:
        raise MalformedOrder(f"{where}: missing")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedOrder(f"{where}: neither a decimal string nor a whole number")
    if isinstance(value, int):
        if value > MAX_AMOUNT:
            # Said before Decimal meets a number of a thousand digits.
            raise MalformedOrder(f"{where}: above {decimal_text(MAX_AMOUNT)}")
        amount = Decimal(value)
    else:
        text = value.strip()
        if len(text) > MAX_AMOUNT_TEXT or _AMOUNT_TEXT.fullmatch(text) is None:
            raise MalformedOrder(f'{where}: not a non-negative decimal such as "3.50"')
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise MalformedOrder(f"{where}: not a decimal") from None
    if amount < 0 or (positive and amount == 0):
        raise MalformedOrder(f"{where}: {'not above zero' if positive else 'below zero'}")
    if amount > MAX_AMOUNT:
        raise MalformedOrder(f"{where}: above {decimal_text(MAX_AMOUNT)}")
    if amount != amount.quantize(_QUANTUM):
        raise MalformedOrder(f"{where}: more than {MAX_DECIMAL_PLACES} decimal places")
    return amount


def _unit(value: Any, where: str) -> str:
    if value is None:
        raise MalformedOrder(f"{where}: missing")
    if not isinstance(value, str):
        raise MalformedOrder(f"{where}: not a string")
    name = value.strip()
    for prefix in _UNIT_PREFIXES:
        name = name.removeprefix(prefix)
    if _UNIT_NAME.fullmatch(name) is None:
        raise MalformedOrder(f"{where}: not an om2 unit name")
    return name


def _currency(value: Any, where: str) -> str | None:
    if value is None:
        return None
    where = f"{where}.resourceConformsTo"
    if not isinstance(value, str) or not value.strip():
        raise MalformedOrder(f"{where}: not a URI")
    if len(value) > MAX_URL_LENGTH:
        raise MalformedOrder(f"{where}: longer than {MAX_URL_LENGTH} characters")
    return currencies.code_for(value) or value.strip()


def _short_text(value: Any, where: str, limit: int) -> str | None:
    """A one-line text: its spaces collapsed, at most ``limit`` characters."""
    if not isinstance(value, str):
        raise MalformedOrder(f"{where}: not a string")
    text = " ".join(value.split())
    if len(text) > limit:
        raise MalformedOrder(f"{where}: longer than {limit} characters")
    return text or None


def _option(value: Any, where: str) -> str | None:
    return None if value is None else _short_text(value, where, MAX_OPTION_TEXT_LENGTH)


def _note(value: Any, where: str) -> str:
    """``content`` as plain text: it is HTML in ActivityStreams, and a note is shown as
    text, never as markup."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedOrder(f"{where}: not a string")
    if len(value) > MAX_NOTE_SOURCE_LENGTH:
        raise MalformedOrder(f"{where}: longer than {MAX_NOTE_SOURCE_LENGTH} characters")
    text = plain_text(value)
    if len(text) > MAX_NOTE_LENGTH:
        raise MalformedOrder(f"{where}: longer than {MAX_NOTE_LENGTH} characters of text")
    return text


def _status(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedOrder(f"{where}: not an object")
    name = value.get("name")
    return None if name is None else _short_text(name, f"{where}.name", MAX_STATUS_LENGTH)


def _links(value: Any, where: str) -> None:
    """An agreement's ``url``: payment links (FEP-0ea0), one Link or a list. Only their
    shape is checked; nothing here follows them."""
    if value is None:
        return
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_LINKS:
        raise MalformedOrder(f"{where}: more than {MAX_LINKS} links")
    for n, item in enumerate(items):
        at = f"{where}[{n}]" if isinstance(value, list) else where
        if isinstance(item, str):
            href: Any = item
        elif isinstance(item, dict):
            href = item.get("href")
        else:
            raise MalformedOrder(f"{at}: neither a link nor a URI")
        if not isinstance(href, str) or len(href) > MAX_URL_LENGTH:
            raise MalformedOrder(f"{at}.href: not a URI")


def _at(where: str, term: str) -> str:
    return f"{where}.{term}" if where else term
