"""The offer form of the member's pages: reading it as sent (with its photo), turning
its values into an offer's input for :mod:`node.offers.validation`, and back from a
stored input to the values of the edit form.

The form has a title and a description in each of :data:`LANGUAGES`; categories are
typed as slugs or labels, separated by commas; an end date is the end of that day
(UTC). A refusal of the offer's input names a field of the input: :func:`form_field`
says which field of the form shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from node.errors import BadRequest, Forbidden, Invalid, TooLarge
from node.offers import categories, publish
from node.offers.model import DEFAULT_UNIT
from node.services.sessions import Session
from node.web.responses import node_of
from node.web.ui import sessions

MAX_FIELDS = 40
# Each field but the photo: the longest, a description, is at most 10,000 characters.
MAX_FIELD_BYTES = sessions.MAX_FORM_BYTES
TEXT_FIELDS = (
    "title_fr",
    "title_en",
    "description_fr",
    "description_en",
    "categories",
    "unit",
    "price_amount",
    "currency",
    "place",
    "end_date",
    "photo_description",
)
LANGUAGES = ("fr", "en")


# --- the form as sent --------------------------------------------------------------------


async def read_offer_form(request: Request, session: Session) -> FormData:
    """The offer form with its photo: from this site, with its length, at most the
    photo limit plus what the other fields need, and with the session's token."""
    sessions.check_same_site(request)
    limit = node_of(request).settings.largest_body
    declared = request.headers.get("content-length")
    if declared is None or not (declared.isascii() and declared.isdigit()) or int(declared) > limit:
        raise TooLarge(
            f"this form is at most {limit} bytes with its photo, sent with its length: "
            "choose a smaller photo"
        )
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise Invalid("send the page's form", field="content-type")
    form = await request.form(max_files=1, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    try:
        sessions.check_token(form, session.csrf)
        sessions.check_storable(form)
    except (Forbidden, BadRequest):
        await form.close()
        raise
    return form


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
    content_type: str | None


async def read_photo(form: FormData, max_bytes: int) -> Photo | None:
    """The photo sent with the form, if one was chosen (read up to one byte past the
    limit: enough to refuse it)."""
    upload = form.get("photo")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(max_bytes + 1)
    if not data:
        return None
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    return Photo(data, content_type or None)


def values_sent(form: FormData) -> dict[str, str]:
    values = {}
    for name in TEXT_FIELDS:
        value = form.get(name)
        values[name] = value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""
    values["remove_photo"] = "1" if form.get("remove_photo") else ""
    return values


# --- from the form to the offer's input, and back ----------------------------------------


def _category_slugs(text: str) -> list[str]:
    """Slugs from what the member typed: slugs, or labels in either language."""
    by_label = {}
    for slug, category in categories.all_categories().items():
        for label in category.labels.values():
            by_label[label.casefold()] = slug
    slugs = []
    for item in text.split(","):
        name = item.strip()
        if name:
            slugs.append(by_label.get(name.casefold(), name.lower()))
    return slugs


def _end_time(day: str) -> str:
    """An end date as the end of that day (UTC)."""
    try:
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise Invalid("give the end date as a date", field="end_date") from None
    return f"{day}T23:59:59+00:00"


def _texts(values: dict[str, str], prefix: str, first: str) -> dict[str, str]:
    order = (first, *(lang for lang in LANGUAGES if lang != first))
    return {lang: values[f"{prefix}_{lang}"] for lang in order if values[f"{prefix}_{lang}"]}


def new_input(values: dict[str, str], language: str) -> dict[str, Any]:
    titles = _texts(values, "title", language)
    if not titles:
        raise Invalid("need_title", field="title_fr")
    data: dict[str, Any] = {
        "title": titles,
        "categories": _category_slugs(values["categories"]),
        "unit": values["unit"] or DEFAULT_UNIT,
    }
    descriptions = _texts(values, "description", next(iter(titles)))
    if descriptions:
        data["description"] = descriptions
    if values["price_amount"]:
        data["price"] = {
            "amount": values["price_amount"].replace(",", "."),
            "currency": values["currency"] or "EUR",
        }
    if values["place"]:
        data["location"] = {"name": values["place"]}
    if values["end_date"]:
        data["end_time"] = _end_time(values["end_date"])
    return data


def changes(values: dict[str, str], source: dict[str, Any]) -> dict[str, Any]:
    """What the edit form changes in the offer's stored input (``source``)."""
    if not (values["title_fr"] or values["title_en"]):
        raise Invalid("need_title", field="title_fr")
    data: dict[str, Any] = {
        "title": {lang: values[f"title_{lang}"] or None for lang in LANGUAGES},
        "description": {lang: values[f"description_{lang}"] or None for lang in LANGUAGES},
        "categories": _category_slugs(values["categories"]),
        "unit": values["unit"] or DEFAULT_UNIT,
    }
    if values["price_amount"]:
        data["price"] = {
            "amount": values["price_amount"].replace(",", "."),
            "currency": values["currency"] or "EUR",
        }
    else:
        data["price"] = None
    data["location"] = {"name": values["place"]} if values["place"] else None
    if values["end_date"] != _end_date(source):
        data["end_time"] = _end_time(values["end_date"]) if values["end_date"] else None
    return data


def _end_date(source: dict[str, Any]) -> str:
    end = source.get("end_time")
    return publish.parse_time(end).date().isoformat() if isinstance(end, str) else ""


def _category_text(slugs: list[str], language: str) -> str:
    labels = []
    for slug in slugs:
        found = categories.get(slug)
        labels.append(found.label(language) if found is not None else slug)
    return ", ".join(labels)


def edit_values(source: dict[str, Any], language: str) -> dict[str, str]:
    """The edit form's values from the offer's stored input."""
    titles = source.get("title") or {}
    descriptions = source.get("description") or {}
    price = source.get("price") or {}
    location = source.get("location") or {}
    images = source.get("images") or []
    values = {
        "categories": _category_text(source.get("categories") or [], language),
        "unit": source.get("unit") or DEFAULT_UNIT,
        "price_amount": price.get("amount", ""),
        "currency": price.get("currency", "EUR"),
        "place": location.get("name") or "",
        "end_date": _end_date(source),
        "photo_description": (images[0].get("description") or "") if images else "",
        "remove_photo": "",
    }
    for lang in LANGUAGES:
        values[f"title_{lang}"] = titles.get(lang, "")
        values[f"description_{lang}"] = descriptions.get(lang, "")
    return values


# Where each field of the offer's input is on the form.
_FIELD_PREFIXES = (
    ("title.fr", "title_fr"),
    ("title.en", "title_en"),
    ("title", "title_fr"),
    ("description.fr", "description_fr"),
    ("description.en", "description_en"),
    ("description", "description_fr"),
    ("categories", "categories"),
    ("kind", "categories"),
    ("unit", "unit"),
    ("price.currency", "currency"),
    ("price", "price_amount"),
    ("location", "place"),
    ("end_time", "end_date"),
    ("images[0].description", "photo_description"),
    ("images", "photo"),
    ("image", "photo"),
)
FORM_FIELDS = frozenset(TEXT_FIELDS) | {"photo"}


def form_field(field: str | None) -> str | None:
    """The form field an :class:`Invalid` names, or ``None`` (shown above the form)."""
    if field is None:
        return None
    if field in FORM_FIELDS:
        return field
    for prefix, name in _FIELD_PREFIXES:
        if field == prefix or field.startswith((prefix + ".", prefix + "[")):
            return name
    return None


def blank_values() -> dict[str, str]:
    """The values of the form to publish a new offer."""
    values = dict.fromkeys(TEXT_FIELDS, "")
    values["unit"] = DEFAULT_UNIT
    values["currency"] = "EUR"
    values["remove_photo"] = ""
    return values


def current_photo(source: dict[str, Any]) -> dict[str, Any] | None:
    """The first image of a stored input (the one the form shows and replaces)."""
    images = source.get("images") or []
    return dict(images[0]) if images and isinstance(images[0], dict) else None
