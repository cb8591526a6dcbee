"""Reading offers other servers publish: FEP-0837 ``Proposal`` documents, leniently.

Software in the wild writes the same offer several ways: ``vf:`` or ``om2:`` spellings,
amounts as strings or numbers, a currency as a Wikidata URI in any of its spellings, a
bare ISO code, or something else entirely (Mitra uses CAIP-19 asset ids).

Offers reach us in a ``Create`` or ``Update``, in a co-op's ``offers`` collection, or
linked from an actor's profile (:func:`linked_proposals`), as FEP-0837 allows and as
Mitra publishes them.

A document goes through three steps: :func:`~node.offers.normalise.normalise` rewrites
the variants to one spelling and keeps only the terms we read; the result is validated
against ``schemas/offer.schema.json`` (types, and a limit on every string and list);
then :func:`from_proposal` builds a :class:`RemoteOffer`, sanitising every piece of HTML.
Anything unusable is refused with :class:`RemoteOfferError`, a ``MalformedInput``.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from federation import resources
from federation.errors import MalformedInput
from federation.origins import same_origin
from federation.storable import unstorable_at
from node.offers import categories, currencies
from node.offers.markdown import sanitise_html
from node.offers.model import (
    CLAIMS,
    DELIVERY_OPTIONS,
    MAX_CATEGORIES,
    MAX_IMAGES,
    PAYMENT_OPTIONS,
    UNIT_BY_WIRE_NAME,
    Image,
    Kind,
    Location,
    Options,
    Status,
)
from node.offers.normalise import normalise
from node.offers.vocabulary import (
    ACTION_DELIVER_SERVICE,
    CATEGORY_BASE,
    VF_NAMESPACE,
)

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

OFFER_SCHEMA_FILE = resources.schemas() / "offer.schema.json"
UNDETERMINED_LANGUAGE = "und"  # BCP 47, for a name or content given without a language


# FEP-0837, "Publishing a proposal": a proposal linked from an actor is a FEP-0ea0
# payment link (``rel`` holds "payment") whose ``rel`` also names the ValueFlows
# Proposal class: the FEP spells it https://w3id.org/valueflows/Proposal, Mitra (its
# author's server) in the vf: namespace.
PAYMENT_RELATION = "payment"
PROPOSAL_RELATIONS = frozenset({"https://w3id.org/valueflows/Proposal", VF_NAMESPACE + "Proposal"})
# A profile links a few proposals (Mitra links one); more is not read.
MAX_LINKED_PROPOSALS = 10


class RemoteOfferError(MalformedInput):
    """A peer's offer we cannot accept; the reason names the property."""


@dataclass(frozen=True, slots=True)
class RemotePrice:
    amount: Decimal
    currency: str | None  # ISO 4217, when the URI is a currency we know
    currency_uri: str  # as the peer sent it


@dataclass(frozen=True, slots=True)
class RemoteOffer:
    id: str
    attributed_to: str
    purpose: str  # "offer" or "request"
    action: str  # the ValueFlows action of the primary intent
    unit: str  # one of our unit names when the wire unit maps to one, else as sent
    titles: Mapping[str, str] = field(default_factory=dict)
    descriptions_html: Mapping[str, str] = field(default_factory=dict)  # sanitised
    categories: tuple[str, ...] = ()  # our category slugs the offer carries
    tags: tuple[str, ...] = ()  # every hashtag, lower-cased, without "#"
    unit_quantity: Decimal | None = None  # how many units the price is for
    price: RemotePrice | None = None
    available: Decimal | None = None
    minimum: Decimal | None = None
    unit_based: bool | None = None
    resource_conforms_to: str | None = None
    location: Location | None = None
    images: tuple[Image, ...] = ()
    end_time: datetime | None = None
    published: datetime | None = None
    updated: datetime | None = None
    url: str | None = None
    claims: Options = field(default_factory=Options)
    delivery: Options = field(default_factory=Options)
    payment: Options = field(default_factory=Options)

    @property
    def kind(self) -> Kind:
        return Kind.SERVICE if self.action == ACTION_DELIVER_SERVICE else Kind.GOOD

    @property
    def title(self) -> str:
        return next(iter(self.titles.values()), "")

    def status(self, now: datetime) -> Status:
        if self.end_time is not None and now >= self.end_time:
            return Status.EXPIRED
        return Status.ACTIVE


def from_proposal(document: Any) -> RemoteOffer:
    """A peer's ``Proposal`` as a :class:`RemoteOffer`, or :class:`RemoteOfferError`."""
    if not isinstance(document, dict):
        raise RemoteOfferError("the offer is not a JSON object")
    # Text no database can hold: a peer's JSON with it is refused as it is parsed
    # (federation.jsonlimits); a document that came any other way is refused here.
    where = unstorable_at(document)
    if where is not None:
        raise RemoteOfferError(f"{where}: holds a NUL or an unpaired surrogate")
    normalised = normalise(document)
    validate(normalised)
    return _build(normalised)


# --- step 2: the schema (step 1 is node.offers.normalise) -----------------------------


@functools.cache
def _validator() -> Validator:
    # jsonschema is imported here, on first use: it is slow to import and the server's
    # start-up has no need of it.
    from jsonschema import Draft202012Validator

    schema = json.loads(OFFER_SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@functools.cache
def _fast_check() -> Callable[[Any], Any]:
    """The same schema compiled to Python by fastjsonschema: about fifty times faster
    than jsonschema on a valid offer, which matters when a backfill brings thousands.
    It says only yes or no; a no is explained by jsonschema (:func:`validate`). The
    schema uses no keyword that draft 7 lacks, so it is compiled as draft 7 (which
    fastjsonschema knows); a test holds the two validators to the same answers."""
    # The validators load with the first peer offer read, not at start-up.
    import fastjsonschema

    schema = _draft_7(json.loads(OFFER_SCHEMA_FILE.read_text(encoding="utf-8")))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema)


def _draft_7(schema: Any) -> Any:
    """The schema with each ``$ref`` that has sibling keywords moved into an ``allOf``:
    draft 7 ignores a ``$ref``'s siblings (2020-12 applies them), and those siblings
    say, for one, that a ``nameMap``'s texts are strings."""
    if isinstance(schema, list):
        return [_draft_7(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _draft_7(value) for key, value in schema.items()}
    if "$ref" in out and len(out) > 1:
        out = {"allOf": [{"$ref": out.pop("$ref")}, out]}
    return out


def is_valid_fast(normalised: Mapping[str, Any]) -> bool:
    # Compiled once by _fast_check; imported here for its exception type only.
    import fastjsonschema

    try:
        _fast_check()(normalised)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def validate(normalised: Mapping[str, Any]) -> None:
    """Check a normalised offer against ``schemas/offer.schema.json``."""
    if is_valid_fast(normalised):
        return
    # Only an offer that fails the fast check needs jsonschema's explanation.
    from jsonschema.exceptions import best_match

    # A hostile document can fail in thousands of places; the first few are enough to
    # pick the most telling one.
    errors = itertools.islice(_validator().iter_errors(normalised), 20)
    error = best_match(errors)
    if error is not None:
        where = _path(error.absolute_path) or "the offer"
        reason = _describe(error.validator, error.validator_value, error.message)
        if error.validator == "pattern" and where.endswith("hasNumericalValue"):
            reason += ': an amount is a non-negative decimal such as "3.50"'
        raise RemoteOfferError(f"{where}: {reason}")


def _path(parts: Iterable[str | int]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _describe(keyword: object, limit: object, message: str) -> str:
    """A short reason: jsonschema's own messages quote the whole offending value, which
    for a hostile document can be megabytes long."""
    reasons = {
        "maxItems": f"more than {limit} items",
        "maxLength": f"longer than {limit} characters",
        "maxProperties": f"more than {limit} entries",
        "minLength": "empty",
        "minItems": "empty",
        "pattern": "not in the expected form",
        "type": f"should be of type {limit}",
        "minimum": f"below {limit}",
        "maximum": f"above {limit}",
        "enum": f"should be one of {limit}",
        "additionalProperties": "has a property that is not read here",
        "anyOf": "is neither a known value nor an object with a name",
    }
    reason = reasons.get(str(keyword), message)
    return reason if len(reason) <= 300 else reason[:299] + "…"


# --- step 3: the offer ------------------------------------------------------------------


def _build(doc: Mapping[str, Any]) -> RemoteOffer:
    publishes = doc["publishes"]
    quantity = publishes["resourceQuantity"]
    wire_unit = quantity["hasUnit"]
    unit = UNIT_BY_WIRE_NAME[wire_unit].name if wire_unit in UNIT_BY_WIRE_NAME else wire_unit
    conforms_to = publishes.get("resourceConformsTo")
    tags = _tags(doc.get("tag", []))
    return RemoteOffer(
        id=doc["id"],
        attributed_to=doc["attributedTo"],
        purpose=doc["purpose"],
        action=publishes["action"],
        unit=unit,
        titles=_titles(doc),
        descriptions_html=_descriptions(doc),
        categories=_categories(tags, conforms_to),
        tags=tags,
        unit_quantity=_optional_amount(quantity.get("hasNumericalValue")),
        price=_price(doc.get("reciprocal")),
        available=_optional_amount(publishes.get("availableQuantity", {}).get("hasNumericalValue")),
        minimum=_optional_amount(publishes.get("minimumQuantity", {}).get("hasNumericalValue")),
        unit_based=doc.get("unitBased"),
        resource_conforms_to=conforms_to,
        location=_location(doc.get("location")),
        images=_images(doc.get("attachment", [])),
        end_time=_datetime(doc.get("endTime"), "endTime", strict=True),
        published=_datetime(doc.get("published"), "published", strict=False),
        updated=_datetime(doc.get("updated"), "updated", strict=False),
        url=doc.get("url"),
        claims=_options(doc.get("claims", []), CLAIMS),
        delivery=_options(doc.get("deliveryOptions", []), DELIVERY_OPTIONS),
        payment=_options(doc.get("paymentOptions", []), PAYMENT_OPTIONS),
    )


def _titles(doc: Mapping[str, Any]) -> dict[str, str]:
    titles = {lang: " ".join(text.split()) for lang, text in doc.get("nameMap", {}).items()}
    titles = {lang: text for lang, text in titles.items() if text}
    if not titles and doc.get("name", "").strip():
        titles = {UNDETERMINED_LANGUAGE: " ".join(doc["name"].split())}
    return titles


def _descriptions(doc: Mapping[str, Any]) -> dict[str, str]:
    sources = doc.get("contentMap") or (
        {UNDETERMINED_LANGUAGE: doc["content"]} if doc.get("content") else {}
    )
    cleaned = {lang: sanitise_html(text) for lang, text in sources.items()}
    return {lang: text for lang, text in cleaned.items() if text}


def _tags(items: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    names: list[str] = []
    for item in items:
        name = item.get("name", "")
        if item.get("type") == "Hashtag" or name.startswith("#"):
            tag = name.lstrip("#").strip().casefold()
            if tag and tag not in names:
                names.append(tag)
    return tuple(names)


def _categories(tags: Iterable[str], conforms_to: str | None) -> tuple[str, ...]:
    slugs = [tag for tag in tags if categories.is_known(tag)]
    if conforms_to is not None and conforms_to.startswith(CATEGORY_BASE):
        slug = conforms_to[len(CATEGORY_BASE) :]
        if categories.is_known(slug) and slug not in slugs:
            slugs.insert(0, slug)
    return tuple(slugs[:MAX_CATEGORIES])


def _price(reciprocal: Mapping[str, Any] | None) -> RemotePrice | None:
    if reciprocal is None:
        return None
    uri = reciprocal["resourceConformsTo"]
    return RemotePrice(
        amount=_amount(reciprocal["resourceQuantity"]["hasNumericalValue"]),
        currency=currencies.code_for(uri),
        currency_uri=uri,
    )


def _amount(text: str) -> Decimal:
    return Decimal(text)  # the schema allowed digits and one point only


def _optional_amount(text: str | None) -> Decimal | None:
    return None if text is None else _amount(text)


def _location(place: Mapping[str, Any] | None) -> Location | None:
    if place is None:
        return None
    name = " ".join(place.get("name", "").split()) or None
    latitude, longitude = place.get("latitude"), place.get("longitude")
    if latitude is None or longitude is None:
        latitude = longitude = None
    if name is None and latitude is None:
        return None
    return Location(
        name=name,
        latitude=None if latitude is None else float(latitude),
        longitude=None if longitude is None else float(longitude),
    )


def _images(attachments: Iterable[Mapping[str, Any]]) -> tuple[Image, ...]:
    images: list[Image] = []
    for item in attachments:
        media_type = item.get("mediaType", "")
        url = item.get("url")
        if url is None or not (media_type.startswith("image/") or item.get("type") == "Image"):
            continue
        images.append(Image(url=url, media_type=media_type, description=item.get("name", "")))
        if len(images) == MAX_IMAGES:
            break
    return tuple(images)


def _datetime(value: str | None, term: str, *, strict: bool) -> datetime | None:
    """An ``xsd:dateTime``. A bad ``endTime`` refuses the offer (we would not know when
    it expires); a bad ``published`` or ``updated`` is only dropped."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        # A moment at the edge of the calendar, in a time zone that pushes it past.
        moment = moment if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        moment = None
    if moment is None or moment.tzinfo is None:
        if strict:
            raise RemoteOfferError(f"{term}: {value!r} is not a date and time with a time zone")
        return None
    return moment


def _options(items: Iterable[Any], known: Iterable[str]) -> Options:
    known_values = set(known)
    chosen: list[str] = []
    other: list[str] = []
    for item in items:
        text = item["name"] if isinstance(item, dict) else item
        text = " ".join(text.split())
        target = chosen if isinstance(item, str) and text in known_values else other
        if text and text not in target:
            target.append(text)
    return Options(known=tuple(chosen), other=tuple(other))


# --- proposals linked from an actor -------------------------------------------------------


def linked_proposals(actor: Mapping[str, Any], *, owner: str | None = None) -> tuple[str, ...]:
    """The ids of the FEP-0837 proposals an actor links from its profile: the ``href``
    of each FEP-0ea0 payment link in its ``attachment`` whose ``rel`` names the
    Proposal class, on the actor's own server, in order, without repeats, at most
    :data:`MAX_LINKED_PROPOSALS`. Mitra publishes its proposals this way and sends no
    ``Create`` for them. What is malformed, or on another server, is left out.

    ``owner`` is the actor the links are taken for (the sender of the activity): a
    document fetched for it may have come, through a redirect, from another server, and
    links there are not its own."""
    owner = actor.get("id") if owner is None else owner
    attachments = actor.get("attachment")
    if isinstance(attachments, dict):
        attachments = [attachments]
    if not isinstance(owner, str) or not isinstance(attachments, list):
        return ()
    found: list[str] = []
    for item in attachments:
        if not isinstance(item, dict) or item.get("type") != "Link":
            continue
        rel = item.get("rel")
        named = [rel] if isinstance(rel, str) else rel if isinstance(rel, list) else []
        relations = {name for name in named if isinstance(name, str)}
        href = item.get("href")
        if (
            PAYMENT_RELATION in relations
            and relations & PROPOSAL_RELATIONS
            and isinstance(href, str)
            and same_origin(href, owner)
            and href not in found
        ):
            found.append(href)
            if len(found) == MAX_LINKED_PROPOSALS:
                break
    return tuple(found)
