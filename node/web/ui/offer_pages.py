"""A member's own offers in the browser: the list, publishing one with a photo,
changing it, withdrawing it.

- ``GET /me/offers``: the offers the member published, newest first (an admin sees all
  of the co-op's own offers).
- ``GET|POST /offers/new``: the form to publish one. It is sent as
  ``multipart/form-data`` with its photo, which goes through the same checks as an
  upload to the API (its type read from its bytes, the node's size limit) before the
  offer goes through :func:`node.offers.offering.create_offer`, as the API's would.
- ``GET|POST /offers/KEY/edit`` and ``POST /offers/KEY/withdraw``: for the offer's
  author or an admin only (403 for anyone else).

Every page needs the member role (an observer gets a 403 page); every form is checked
as :func:`node.web.ui.sessions.read_form` checks forms: from this site, with its length
and the session's token. A refused offer shows the form again, its values kept (not
the file, which the browser cannot be given back) and the message next to its field;
nothing is stored, and a photo stored for it is removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from node.catalogue.store import WITHDRAWN
from node.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NodeError,
    NotFound,
    TooLarge,
)
from node.offers import categories, offering, parse_offer_input
from node.offers.currencies import ITEM_BY_CODE
from node.offers.model import DEFAULT_UNIT, UNITS
from node.runtime import Node
from node.services import media as media_service
from node.services import tokens
from node.services.sessions import Session
from node.storage.tables import offers
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors, refusal_page

MAX_FIELDS = 40
# Each field but the photo: the longest, a description, is at most 10,000 characters.
MAX_FIELD_BYTES = sessions.MAX_FORM_BYTES
OFFERS_SHOWN = 200
KEY = re.compile(r"[0-9A-Za-z_-]{1,64}")  # an offer's key, as the notices name it
WITHDRAWN_REASON = "this offer was withdrawn and cannot change; publish a new offer instead"
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
    limit = node_of(request).settings.media_max_bytes + MAX_FIELD_BYTES
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


async def _photo(form: FormData, max_bytes: int) -> Photo | None:
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


def _values(form: FormData) -> dict[str, str]:
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


def _new_input(values: dict[str, str], language: str) -> dict[str, Any]:
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


def _changes(values: dict[str, str], source: dict[str, Any]) -> dict[str, Any]:
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
    return offering.parse_time(end).date().isoformat() if isinstance(end, str) else ""


def _category_text(slugs: list[str], language: str) -> str:
    labels = []
    for slug in slugs:
        found = categories.get(slug)
        labels.append(found.label(language) if found is not None else slug)
    return ", ".join(labels)


def _form_values(source: dict[str, Any], language: str) -> dict[str, str]:
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


# --- reading the offers ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MyOffer:
    key: str
    title: str
    status: str
    price: Decimal | None
    currency: str | None
    unit: str | None
    published: datetime


@dataclass(frozen=True, slots=True)
class Stored:
    key: str
    author_id: int | None
    source: dict[str, Any]
    withdrawn: bool


def _key_of(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def _unit_label(unit: str | None, language: str) -> str | None:
    found = UNITS.get(unit) if unit else None
    return unit if found is None else found.labels.get(language, unit)


def _changer(session: Session) -> offering.Changer:
    return offering.Changer(member_id=session.member_id, admin=tokens.allows(session.role, "admin"))


async def _stored(request: Request, key: str) -> Stored:
    node = node_of(request)
    uri = node.urls.offer(key)

    def read(conn: Connection) -> Any:
        return conn.execute(
            select(offers.c.author_id, offers.c.source, offers.c.status).where(
                offers.c.uri == uri, offers.c.local == 1
            )
        ).first()

    row = await node.db.read(read)
    if row is None or row.source is None:
        raise NotFound(f"this co-op has no offer {key!r}")
    return Stored(
        key=key,
        author_id=row.author_id,
        source=json.loads(row.source),
        withdrawn=row.status == WITHDRAWN,
    )


async def _may_change(request: Request, session: Session, key: str) -> Stored:
    stored = await _stored(request, key)
    if not _changer(session).may_change(stored.author_id):
        raise Forbidden(offering.NOT_THE_AUTHOR)
    return stored


def _not_found(request: Request) -> Response:
    return render.page(
        request,
        i18n.choose_language(request),
        "not_found.html",
        {"coop_name": node_of(request).settings.name},
        status=404,
    )


# --- the pages ---------------------------------------------------------------------------


@html_errors
async def my_offers(request: Request) -> Response:
    session = await sessions.require(request, "member")
    node = node_of(request)
    admin = tokens.allows(session.role, "admin")
    now = node.clock.now()
    where = [offers.c.local == 1]
    if not admin:
        where.append(offers.c.author_id == session.member_id)
    query = (
        select(
            offers.c.uri,
            offers.c.title,
            offers.c.status,
            offers.c.price_e4,
            offers.c.currency,
            offers.c.unit,
            offers.c.end_time,
            offers.c.published,
        )
        .where(*where)
        .order_by(offers.c.published.desc(), offers.c.id.desc())
        .limit(OFFERS_SHOWN)
    )
    rows = await node.db.read(lambda conn: conn.execute(query).all())
    choice = i18n.choose_language(request)
    found = []
    for row in rows:
        status = "withdrawn" if row.status == WITHDRAWN else "active"
        if status == "active" and row.end_time is not None and row.end_time <= now:
            status = "expired"
        found.append(
            MyOffer(
                key=_key_of(row.uri),
                title=row.title,
                status=status,
                price=None if row.price_e4 is None else Decimal(row.price_e4) / Decimal(10_000),
                currency=row.currency,
                unit=_unit_label(row.unit, choice.language),
                published=row.published,
            )
        )
    params = request.query_params
    notices = {
        name: params[name]
        for name in ("published", "updated", "withdrawn")
        if KEY.fullmatch(params.get(name, ""))
    }
    response = render.page(
        request,
        choice,
        "my_offers.html",
        {
            "session": session,
            "csrf": session.csrf,
            "offers": found,
            "admin": admin,
            "notices": notices,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _form_page(
    request: Request,
    session: Session,
    *,
    values: dict[str, str],
    key: str | None = None,
    photo: dict[str, Any] | None = None,
    error: Invalid | None = None,
    photo_dropped: bool = False,
) -> Response:
    choice = i18n.choose_language(request)
    errors: dict[str, str] = {}
    general = None
    if error is not None:
        field = form_field(error.field)
        if field is None:
            general = error.reason
        else:
            errors[field] = error.reason
    response = render.page(
        request,
        choice,
        "offer_form.html",
        {
            "session": session,
            "csrf": session.csrf,
            "form": values,
            "key": key,
            "action": f"/offers/{key}/edit" if key else "/offers/new",
            "photo": photo,
            "errors": errors,
            "general_error": general,
            "photo_dropped": photo_dropped,
            "units": [
                (name, unit.labels.get(choice.language, name)) for name, unit in UNITS.items()
            ],
            "currencies": _currencies(),
            "max_photo_bytes": node_of(request).settings.media_max_bytes,
        },
        status=400 if error is not None else 200,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _currencies() -> list[str]:
    return ["EUR", *sorted(code for code in ITEM_BY_CODE if code != "EUR")]


def _blank() -> dict[str, str]:
    values = dict.fromkeys(TEXT_FIELDS, "")
    values["unit"] = DEFAULT_UNIT
    values["currency"] = "EUR"
    values["remove_photo"] = ""
    return values


@html_errors
async def new_offer(request: Request) -> Response:
    session = await sessions.require(request, "member")
    return _form_page(request, session, values=_blank())


async def _store_photo(
    request: Request, session: Session, photo: Photo, description: str
) -> media_service.Media:
    """The photo, checked as an API upload is and stored; its refusal names the form's
    photo field."""
    node = node_of(request)
    if not description:
        raise Invalid("need_alt", field="photo_description")
    try:
        return await media_service.store(
            node.db,
            node.settings.data_dir,
            photo.data,
            actor_id=session.actor_id if session.actor_id is not None else node.peers.coop_id,
            now=node.clock.now(),
            declared_type=photo.content_type,
            description=description,
            max_bytes=node.settings.media_max_bytes,
        )
    except Invalid as exc:
        if exc.field == "description":
            raise Invalid(exc.reason, field="photo_description") from None
        raise Invalid(exc.reason, field="photo") from None
    except NodeError as exc:  # too large, not an image
        raise Invalid(exc.reason, field="photo") from None


@html_errors
async def publish(request: Request) -> Response:
    session = await sessions.require(request, "member")
    node = node_of(request)
    form = await read_offer_form(request, session)
    try:
        values = _values(form)
        photo = await _photo(form, node.settings.media_max_bytes)
    finally:
        await form.close()
    language = i18n.choose_language(request).language
    stored: media_service.Media | None = None
    try:
        data = _new_input(values, language)
        # The offer is checked before its photo is stored.
        parse_offer_input(data, now=node.clock.now())
        if photo is not None:
            stored = await _store_photo(request, session, photo, values["photo_description"])
            data["images"] = [{"media_id": stored.key, "description": stored.description}]
        result = await offering.create_offer(node, data, author_id=session.member_id)
    except Invalid as exc:
        if stored is not None:
            await media_service.delete(node.db, node.settings.data_dir, stored.key)
        return _form_page(
            request, session, values=values, error=exc, photo_dropped=photo is not None
        )
    except Exception:  # not on cancellation, as media.store does
        if stored is not None:
            await media_service.delete(node.db, node.settings.data_dir, stored.key)
        raise
    return RedirectResponse(f"/me/offers?published={result['id']}", status_code=303)


def _current_photo(source: dict[str, Any]) -> dict[str, Any] | None:
    images = source.get("images") or []
    return dict(images[0]) if images and isinstance(images[0], dict) else None


@html_errors
async def edit_offer(request: Request) -> Response:
    session = await sessions.require(request, "member")
    key = request.path_params["key"]
    try:
        stored = await _may_change(request, session, key)
    except NotFound:
        return _not_found(request)
    if stored.withdrawn:
        return refusal_page(request, Conflict(WITHDRAWN_REASON))
    return _form_page(
        request,
        session,
        values=_form_values(stored.source, i18n.choose_language(request).language),
        key=key,
        photo=_current_photo(stored.source),
    )


@html_errors
async def save_offer(request: Request) -> Response:
    session = await sessions.require(request, "member")
    node = node_of(request)
    key = request.path_params["key"]
    try:
        stored = await _may_change(request, session, key)
    except NotFound:
        return _not_found(request)
    if stored.withdrawn:
        return refusal_page(request, Conflict(WITHDRAWN_REASON))
    form = await read_offer_form(request, session)
    try:
        values = _values(form)
        photo = await _photo(form, node.settings.media_max_bytes)
    finally:
        await form.close()
    current = _current_photo(stored.source)
    uploaded: media_service.Media | None = None
    try:
        data = _changes(values, stored.source)
        others = list(stored.source.get("images") or [])[1:]
        if photo is not None:
            uploaded = await _store_photo(request, session, photo, values["photo_description"])
            data["images"] = [
                {"media_id": uploaded.key, "description": uploaded.description},
                *others,
            ]
        elif current is not None and values["remove_photo"]:
            data["images"] = others
        elif current is not None and values["photo_description"] != (
            current.get("description") or ""
        ):
            try:
                description = media_service.check_description(values["photo_description"])
            except Invalid as exc:
                raise Invalid(exc.reason, field="photo_description") from None
            data["images"] = [{**current, "description": description or None}, *others]
        await offering.update_offer(node, key, data, by=_changer(session))
    except Invalid as exc:
        if uploaded is not None:
            await media_service.delete(node.db, node.settings.data_dir, uploaded.key)
        return _form_page(
            request,
            session,
            values=values,
            key=key,
            photo=current,
            error=exc,
            photo_dropped=photo is not None,
        )
    except Exception:  # not on cancellation, as media.store does
        if uploaded is not None:
            await media_service.delete(node.db, node.settings.data_dir, uploaded.key)
        raise
    replaced = current is not None and (photo is not None or values["remove_photo"])
    if replaced and current is not None and isinstance(current.get("media_id"), str):
        await _forget_photo(node, current["media_id"])
    return RedirectResponse(f"/me/offers?updated={key}", status_code=303)


async def _forget_photo(node: Node, media_key: str) -> None:
    """Delete a photo the member replaced or removed, unless another of the co-op's
    offers shows it too: a member who takes a photo down expects it gone, not still
    served at the address its followers received."""

    def used(conn: Connection) -> bool:
        # Keys are random: found in an offer's source, it is that offer's photo.
        return (
            conn.execute(
                select(offers.c.id).where(offers.c.source.contains(media_key)).limit(1)
            ).first()
            is not None
        )

    if not await node.db.read(used):
        await media_service.delete(node.db, node.settings.data_dir, media_key)


@html_errors
async def withdraw_offer(request: Request) -> Response:
    session = await sessions.require(request, "member")
    node = node_of(request)
    key = request.path_params["key"]
    try:
        await _may_change(request, session, key)
    except NotFound:
        return _not_found(request)
    await sessions.read_form(request, session)
    await offering.withdraw_offer(node, key, by=_changer(session))
    return RedirectResponse(f"/me/offers?withdrawn={key}", status_code=303)


routes: list[BaseRoute] = [
    Route("/me/offers", my_offers, methods=["GET"]),
    Route("/offers/new", new_offer, methods=["GET"]),
    Route("/offers/new", publish, methods=["POST"]),
    Route("/offers/{key}/edit", edit_offer, methods=["GET"]),
    Route("/offers/{key}/edit", save_offer, methods=["POST"]),
    Route("/offers/{key}/withdraw", withdraw_offer, methods=["POST"]),
]
