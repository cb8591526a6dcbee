"""What a member sends, checked and turned into an :class:`~node.offers.model.Offer`.

Used by the JSON API and the CLI. Every refusal is :class:`node.errors.Invalid` with the
dotted path of the field (``price.amount``, ``title.fr``, ``images[2].url``) and a reason
the member can act on. Unknown fields are refused, every string and list has a limit,
and sizes are checked before anything is looked at item by item.

Descriptions are Markdown and are not refused for what they contain: raw HTML is shown
as text and the rendered HTML is sanitised (:mod:`node.offers.markdown`).

The shape, with every field but ``title`` and ``categories`` optional::

    {
      "title": {"fr": "Pommes bio", "en": "Organic apples"},
      "description": {"fr": "Cueillies **ce matin**.", "en": "Picked **this morning**."},
      "categories": ["apples"],
      "kind": "good",
      "price": {"amount": "3.50", "currency": "EUR"},
      "unit": "kg",
      "quantity": {"available": "120", "minimum": "2"},
      "location": {"name": "Die", "latitude": 44.75, "longitude": 5.37},
      "images": [{"url": "https://…", "media_type": "image/jpeg", "description": "…"}],
      "end_time": "2025-10-31T18:00:00+01:00",
      "claims": ["organic", "local", {"name": "Variétés anciennes"}],
      "delivery_options": ["pickup", "local_delivery"],
      "payment_options": ["cash", "bank_transfer"],
      "status": "active"
    }
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from node.errors import Invalid
from node.languages import LANGUAGE_TAG
from node.offers import categories, currencies
from node.offers.images import ALLOWED_TYPES
from node.offers.markdown import render_markdown
from node.offers.model import (
    CLAIMS,
    DEFAULT_UNIT,
    DELIVERY_OPTIONS,
    MAX_AMOUNT,
    MAX_CATEGORIES,
    MAX_DECIMAL_PLACES,
    MAX_DESCRIPTION_LENGTH,
    MAX_IMAGE_DESCRIPTION_LENGTH,
    MAX_IMAGES,
    MAX_LANGUAGES,
    MAX_LOCATION_NAME_LENGTH,
    MAX_OPTION_TEXT_LENGTH,
    MAX_OPTIONS,
    MAX_TITLE_LENGTH,
    MAX_URL_LENGTH,
    MAX_VALIDITY,
    PAYMENT_OPTIONS,
    UNITS,
    Image,
    Kind,
    Location,
    Offer,
    Options,
    Price,
    Status,
)

FIELDS = frozenset(
    {
        "title",
        "description",
        "categories",
        "kind",
        "price",
        "unit",
        "quantity",
        "location",
        "images",
        "end_time",
        "claims",
        "delivery_options",
        "payment_options",
        "status",
    }
)
# Fields that hold an object whose keys an update may change one at a time.
_MERGED_ON_UPDATE = frozenset({"title", "description", "price", "quantity", "location"})

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_NUMBER_TEXT = 32  # characters, before a number is parsed at all


def parse_offer_input(data: Any, *, now: datetime) -> Offer:
    """A new offer from the JSON API or the CLI; :class:`Invalid` names what is wrong."""
    document = _object(data, "")
    status = document.get("status", Status.ACTIVE.value)
    if status != Status.ACTIVE.value:
        raise Invalid('a new offer is "active"; withdraw it later with an update', field="status")
    return _parse(document, now=now, end_time_is_new=True, withdrawn=False)


def apply_update(offer: Offer, data: Any, *, now: datetime) -> Offer:
    """``offer`` with the fields in ``data`` changed: stock, price, expiry, anything.

    A field given replaces the old value; ``title``, ``description``, ``price``,
    ``quantity`` and ``location`` are merged key by key, so ``{"quantity":
    {"available": "40"}}`` changes the stock alone; ``null`` clears an optional field.
    ``{"status": "withdrawn"}`` withdraws the offer, for good.
    """
    changes = _object(data, "")
    if offer.withdrawn:
        raise Invalid(
            "this offer was withdrawn and cannot change; publish a new offer instead",
            field="status",
        )
    status = changes.get("status", Status.ACTIVE.value)
    if status not in (Status.ACTIVE.value, Status.WITHDRAWN.value):
        raise Invalid(_status_reason(status), field="status")
    current = offer_to_input(offer)
    if "categories" in changes and "kind" not in changes:
        del current["kind"]  # decided again from the new first category
    for key, value in changes.items():
        if (
            key in _MERGED_ON_UPDATE
            and isinstance(value, dict)
            and isinstance(current.get(key), dict)
        ):
            merged = {**current[key], **value}
            current[key] = {k: v for k, v in merged.items() if v is not None}
        else:
            current[key] = value
    # An end time in the past is refused only when it is being set: a stock update to
    # an offer that has just expired must not fail because of a date nobody touched.
    end_time_is_new = "end_time" in changes and changes["end_time"] is not None
    return _parse(
        current, now=now, end_time_is_new=end_time_is_new, withdrawn=status == "withdrawn"
    )


def offer_to_input(offer: Offer) -> dict[str, Any]:
    """The JSON API shape of ``offer``: what :func:`parse_offer_input` reads back."""
    document: dict[str, Any] = {
        "title": dict(offer.titles),
        "categories": list(offer.categories),
        "kind": offer.kind.value,
        "unit": offer.unit,
        "status": Status.WITHDRAWN.value if offer.withdrawn else Status.ACTIVE.value,
    }
    if offer.descriptions:
        document["description"] = dict(offer.descriptions)
    if offer.price is not None:
        document["price"] = {
            "amount": decimal_text(offer.price.amount),
            "currency": offer.price.currency,
        }
    quantity = {}
    if offer.available is not None:
        quantity["available"] = decimal_text(offer.available)
    if offer.minimum is not None:
        quantity["minimum"] = decimal_text(offer.minimum)
    if quantity:
        document["quantity"] = quantity
    if offer.location is not None:
        location = {
            "name": offer.location.name,
            "latitude": offer.location.latitude,
            "longitude": offer.location.longitude,
        }
        document["location"] = {k: v for k, v in location.items() if v is not None}
    if offer.images:
        document["images"] = [_image_input(image) for image in offer.images]
    if offer.end_time is not None:
        document["end_time"] = offer.end_time.isoformat()
    for key, options in (
        ("claims", offer.claims),
        ("delivery_options", offer.delivery),
        ("payment_options", offer.payment),
    ):
        if options:
            document[key] = [*options.known, *({"name": text} for text in options.other)]
    return document


def decimal_text(value: Decimal) -> str:
    """A decimal as plain digits, never in exponent form ("1E+2" is "100")."""
    return format(value, "f")


# --- the whole offer --------------------------------------------------------------------


def _parse(
    document: Mapping[str, Any], *, now: datetime, end_time_is_new: bool, withdrawn: bool
) -> Offer:
    unknown = sorted(set(document) - FIELDS)
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0])
    if "title" not in document or document["title"] is None:
        raise Invalid("give a title, in at least one language", field="title")
    titles = _language_map(
        document["title"], "title", max_length=MAX_TITLE_LENGTH, single_line=True
    )
    descriptions: dict[str, str] = {}
    if document.get("description") is not None:
        descriptions = _language_map(
            document["description"], "description", max_length=MAX_DESCRIPTION_LENGTH
        )
    slugs = _categories(document.get("categories"))
    unit = _unit(document.get("unit", DEFAULT_UNIT))
    available, minimum = _quantity(document.get("quantity"))
    return Offer(
        titles=titles,
        descriptions=descriptions,
        descriptions_html={lang: render_markdown(text) for lang, text in descriptions.items()},
        categories=slugs,
        kind=_kind(document.get("kind"), slugs),
        unit=unit,
        price=_price(document.get("price")),
        available=available,
        minimum=minimum,
        location=_location(document.get("location")),
        images=_images(document.get("images")),
        end_time=_end_time(document.get("end_time"), now=now, must_be_future=end_time_is_new),
        claims=_options(document.get("claims"), "claims", CLAIMS),
        delivery=_options(document.get("delivery_options"), "delivery_options", DELIVERY_OPTIONS),
        payment=_options(document.get("payment_options"), "payment_options", PAYMENT_OPTIONS),
        withdrawn=withdrawn,
    )


# --- fields -----------------------------------------------------------------------------


def _language_map(
    value: Any, path: str, *, max_length: int, single_line: bool = False
) -> dict[str, str]:
    mapping = _object(value, path, what='an object of texts by language, e.g. {"fr": "…"}')
    if len(mapping) > MAX_LANGUAGES:
        raise Invalid(f"at most {MAX_LANGUAGES} languages", field=path)
    texts: dict[str, str] = {}
    for language, text in mapping.items():
        where = f"{path}.{language}"
        if not LANGUAGE_TAG.match(language):
            raise Invalid(
                f"{language!r} is not a language tag; use a code such as fr, en or en-GB",
                field=where,
            )
        cleaned = _text(text, where, max_length=max_length, single_line=single_line)
        if cleaned:
            texts[language] = cleaned
    if path == "title" and not texts:
        raise Invalid("give a title, in at least one language", field=path)
    return texts


def _categories(value: Any) -> tuple[str, ...]:
    items = _list(value, "categories", max_items=MAX_CATEGORIES, what="categories")
    if not items:
        raise Invalid("give at least one category", field="categories")
    slugs: list[str] = []
    for index, item in enumerate(items):
        where = f"categories[{index}]"
        if not isinstance(item, str):
            raise Invalid("a category is given by its slug, a string", field=where)
        slug = item.strip().lower().lstrip("#")
        if not categories.is_known(slug):
            raise Invalid(
                f"unknown category {item!r}; use a slug from the category list", field=where
            )
        if slug not in slugs:
            slugs.append(slug)
    return tuple(slugs)


def _kind(value: Any, slugs: Sequence[str]) -> Kind:
    if value is None:
        first = categories.get(slugs[0])
        return Kind(first.kind) if first is not None else Kind.GOOD
    if value not in (Kind.GOOD.value, Kind.SERVICE.value):
        raise Invalid('kind is "good" or "service"', field="kind")
    return Kind(value)


def _unit(value: Any) -> str:
    if not isinstance(value, str) or value not in UNITS:
        raise Invalid(f"unit is one of {', '.join(UNITS)}", field="unit")
    return value


def _price(value: Any) -> Price | None:
    if value is None:
        return None
    price = _object(value, "price", what='an object such as {"amount": "3.50", "currency": "EUR"}')
    _no_unknown(price, {"amount", "currency"}, "price")
    if "amount" not in price:
        raise Invalid('give the amount, e.g. "3.50"', field="price.amount")
    amount = _decimal(price["amount"], "price.amount")
    currency = price.get("currency")
    if not isinstance(currency, str) or not currency.strip():
        raise Invalid('give the currency as an ISO 4217 code, e.g. "EUR"', field="price.currency")
    code = currency.strip().upper()
    if not currencies.is_supported(code):
        raise Invalid(
            f"{currency!r} is not a currency this node knows; use an ISO 4217 code "
            "such as EUR, CHF, GBP or USD",
            field="price.currency",
        )
    return Price(amount=amount, currency=code)


def _quantity(value: Any) -> tuple[Decimal | None, Decimal | None]:
    if value is None:
        return None, None
    quantity = _object(value, "quantity", what='an object such as {"available": "12"}')
    _no_unknown(quantity, {"available", "minimum"}, "quantity")
    available = _optional_decimal(quantity.get("available"), "quantity.available")
    minimum = _optional_decimal(quantity.get("minimum"), "quantity.minimum")
    if minimum is not None and minimum == 0:
        raise Invalid(
            "the minimum order is more than zero; leave it out for no minimum",
            field="quantity.minimum",
        )
    if available is not None and minimum is not None and minimum > available:
        raise Invalid(
            f"the minimum order ({decimal_text(minimum)}) is more than the quantity "
            f"available ({decimal_text(available)})",
            field="quantity.minimum",
        )
    return available, minimum


def amount(value: Any, path: str) -> Decimal:
    """An amount or quantity a member typed, as offers take them (see :func:`_decimal`);
    :class:`Invalid` naming ``path`` otherwise."""
    return _decimal(value, path)


def _optional_decimal(value: Any, path: str) -> Decimal | None:
    return None if value is None else _decimal(value, path)


def _decimal(value: Any, path: str) -> Decimal:
    """A non-negative amount with at most four decimal places, from a string (best:
    "3.50") or a JSON number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid('give a number, preferably as a string such as "3.50"', field=path)
    text = value.strip() if isinstance(value, str) else repr(value)
    if len(text) > _MAX_NUMBER_TEXT:
        raise Invalid("this number is too long", field=path)
    if "," in text:
        raise Invalid('write the decimal separator as a point, e.g. "3.50"', field=path)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise Invalid(f"{value!r} is not a number", field=path) from None
    if not number.is_finite():
        raise Invalid(f"{value!r} is not a number", field=path)
    if number < 0:
        raise Invalid("cannot be negative", field=path)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise Invalid(f"at most {MAX_DECIMAL_PLACES} decimal places", field=path)
    if number > MAX_AMOUNT:
        raise Invalid(f"at most {decimal_text(MAX_AMOUNT)}", field=path)
    if isinstance(exponent, int) and exponent > 0:
        # "1E+2" and "100" are the same amount; keep the plain form.
        number = Decimal(decimal_text(number))
    return number


def _location(value: Any) -> Location | None:
    if value is None:
        return None
    location = _object(value, "location", what="an object with a name, coordinates, or both")
    _no_unknown(location, {"name", "latitude", "longitude"}, "location")
    name = None
    if location.get("name") is not None:
        name = (
            _text(
                location["name"],
                "location.name",
                max_length=MAX_LOCATION_NAME_LENGTH,
                single_line=True,
            )
            or None
        )
    latitude = _coordinate(location.get("latitude"), "location.latitude", 90)
    longitude = _coordinate(location.get("longitude"), "location.longitude", 180)
    if (latitude is None) != (longitude is None):
        missing = "location.longitude" if longitude is None else "location.latitude"
        raise Invalid("give both latitude and longitude, or neither", field=missing)
    if name is None and latitude is None:
        raise Invalid("give the place's name, its coordinates, or both", field="location")
    return Location(name=name, latitude=latitude, longitude=longitude)


def _coordinate(value: Any, path: str, bound: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("give the coordinate as a number in decimal degrees", field=path)
    number = float(value)
    if not -bound <= number <= bound:
        raise Invalid(f"must be between -{bound} and {bound}", field=path)
    return number


def _images(value: Any) -> tuple[Image, ...]:
    items = _list(value, "images", max_items=MAX_IMAGES, what="images")
    return tuple(_image(item, f"images[{index}]") for index, item in enumerate(items))


def _image(value: Any, path: str) -> Image:
    image = _object(value, path, what="an object with the image's url and media_type")
    _no_unknown(image, {"url", "media_type", "description", "size", "media_id"}, path)
    url = _http_url(image.get("url"), f"{path}.url")
    media_type = image.get("media_type")
    if media_type not in ALLOWED_TYPES:
        raise Invalid(
            f"media_type is one of {', '.join(sorted(ALLOWED_TYPES))}", field=f"{path}.media_type"
        )
    description = ""
    if image.get("description") is not None:
        description = _text(
            image["description"], f"{path}.description", max_length=MAX_IMAGE_DESCRIPTION_LENGTH
        )
    size = image.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise Invalid(
            "size is the file's length in bytes, a positive whole number", field=f"{path}.size"
        )
    media_id = image.get("media_id")
    if media_id is not None:
        media_id = _text(media_id, f"{path}.media_id", max_length=200, single_line=True)
    return Image(
        url=url,
        media_type=media_type,
        description=description,
        size=size,
        media_id=media_id or None,
    )


def _image_input(image: Image) -> dict[str, Any]:
    fields = {
        "url": image.url,
        "media_type": image.media_type,
        "description": image.description or None,
        "size": image.size,
        "media_id": image.media_id,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _end_time(value: Any, *, now: datetime, must_be_future: bool) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise Invalid('give a date and time such as "2025-10-31T18:00:00+01:00"', field="end_time")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"{value!r} is not a date and time (ISO 8601)", field="end_time") from None
    if moment.tzinfo is None:
        raise Invalid('give the time zone too, e.g. "+01:00" or "Z"', field="end_time")
    moment = moment.astimezone(UTC).replace(microsecond=0)
    if must_be_future and moment <= now:
        raise Invalid("the end time is already past", field="end_time")
    if must_be_future and moment > now + MAX_VALIDITY:
        raise Invalid(
            f"an offer runs for at most {MAX_VALIDITY.days // 366} years", field="end_time"
        )
    return moment


def _options(value: Any, path: str, known: Sequence[str]) -> Options:
    items = _list(value, path, max_items=MAX_OPTIONS, what="items")
    chosen: list[str] = []
    other: list[str] = []
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        if isinstance(item, str):
            if item not in known:
                raise Invalid(
                    f"unknown value {item!r}; use one of {', '.join(known)}, "
                    'or {"name": "…"} for your own words',
                    field=where,
                )
            if item not in chosen:
                chosen.append(item)
        elif isinstance(item, dict):
            _no_unknown(item, {"name"}, where)
            text = _text(
                item.get("name"),
                f"{where}.name",
                max_length=MAX_OPTION_TEXT_LENGTH,
                single_line=True,
            )
            if not text:
                raise Invalid("the text cannot be empty", field=f"{where}.name")
            if text not in other:
                other.append(text)
        else:
            raise Invalid('each item is a known value or {"name": "…"}', field=where)
    return Options(known=tuple(chosen), other=tuple(other))


# --- shapes -----------------------------------------------------------------------------


def _object(value: Any, path: str, *, what: str = "a JSON object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"expected {what}", field=path or None)
    for key in value:
        if not isinstance(key, str):  # only possible from Python callers, not JSON
            raise Invalid("keys are strings", field=path or None)
    return value


def _list(value: Any, path: str, *, max_items: int, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid("expected a list", field=path)
    if len(value) > max_items:
        raise Invalid(f"at most {max_items} {what} (got {len(value)})", field=path)
    return value


def _no_unknown(mapping: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}", field=f"{path}.{unknown[0]}")


def _text(value: Any, path: str, *, max_length: int, single_line: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid("expected a string", field=path)
    if len(value) > max_length:
        raise Invalid(f"at most {max_length} characters (got {len(value)})", field=path)
    text = _CONTROL.sub("", value)
    if single_line:
        return " ".join(text.split())
    return text.replace("\r\n", "\n").strip()


def _http_url(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("give the URL", field=path)
    if len(value) > MAX_URL_LENGTH:
        raise Invalid(f"at most {MAX_URL_LENGTH} characters", field=path)
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise Invalid("give an http or https URL", field=path)
    return value


def _status_reason(status: Any) -> str:
    if status == Status.EXPIRED.value:
        return "an offer expires at its end_time; set end_time instead"
    return 'status is "active" or "withdrawn"'
