"""A member's own offers in the browser: the list, publishing one with a photo,
changing it, withdrawing it.

- ``GET /me/offers``: the offers the member published, newest first (an admin sees all
  of the co-op's own offers).
- ``GET|POST /offers/new``: the form to publish one. It is sent as
  ``multipart/form-data`` with its photo, which goes through the same checks as an
  upload to the API (its type read from its bytes, the node's size limit) before the
  offer goes through :func:`node.offers.publishing.create_offer`, as the API's would.
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

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from node.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NodeError,
    NotFound,
)
from node.offers import publish as publishing
from node.offers import store as offer_store
from node.offers.currencies import ITEM_BY_CODE
from node.offers.model import UNITS
from node.offers.validation import parse_offer_input
from node.runtime import Node
from node.services import media as media_service
from node.services import tokens
from node.services.sessions import Session
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors, refusal_page
from node.web.ui.offer_form import (
    Photo,
    blank_values,
    changes,
    current_photo,
    edit_values,
    form_field,
    new_input,
    read_offer_form,
    read_photo,
    values_sent,
)

OFFERS_SHOWN = 200
KEY = re.compile(r"[0-9A-Za-z_-]{1,64}")  # an offer's key, as the notices name it
WITHDRAWN_REASON = "this offer was withdrawn and cannot change; publish a new offer instead"


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


def _changer(session: Session) -> publishing.Changer:
    return publishing.Changer(
        member_id=session.member_id, admin=tokens.allows(session.role, "admin")
    )


async def _stored(request: Request, key: str) -> Stored:
    node = node_of(request)
    uri = node.urls.offer(key)
    row = await node.db.read(lambda conn: offer_store.find_editable(conn, uri))
    if row is None or row.source is None:
        raise NotFound(f"this co-op has no offer {key!r}")
    return Stored(
        key=key,
        author_id=row.author_id,
        source=json.loads(row.source),
        withdrawn=row.withdrawn,
    )


async def _may_change(request: Request, session: Session, key: str) -> Stored:
    stored = await _stored(request, key)
    if not _changer(session).may_change(stored.author_id):
        raise Forbidden(publishing.NOT_THE_AUTHOR)
    return stored


# --- the pages ---------------------------------------------------------------------------


@html_errors
async def my_offers(request: Request) -> Response:
    session = await sessions.require(request, "member")
    node = node_of(request)
    admin = tokens.allows(session.role, "admin")
    now = node.clock.now()
    author_id = None if admin else session.member_id
    rows = await node.db.read(
        lambda conn: offer_store.list_authored(conn, author_id=author_id, limit=OFFERS_SHOWN)
    )
    choice = i18n.choose_language(request)
    found = []
    for row in rows:
        status = "withdrawn" if row.withdrawn else "active"
        if status == "active" and row.end_time is not None and row.end_time <= now:
            status = "expired"
        found.append(
            MyOffer(
                key=_key_of(row.uri),
                title=row.title,
                status=status,
                price=row.price,
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


@html_errors
async def new_offer(request: Request) -> Response:
    session = await sessions.require(request, "member")
    return _form_page(request, session, values=blank_values())


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
        values = values_sent(form)
        photo = await read_photo(form, node.settings.media_max_bytes)
    finally:
        await form.close()
    language = i18n.choose_language(request).language
    stored: media_service.Media | None = None
    try:
        data = new_input(values, language)
        # The offer is checked before its photo is stored.
        parse_offer_input(data, now=node.clock.now())
        if photo is not None:
            stored = await _store_photo(request, session, photo, values["photo_description"])
            data["images"] = [{"media_id": stored.key, "description": stored.description}]
        result = await publishing.create_offer(node, data, author_id=session.member_id)
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


@html_errors
async def edit_offer(request: Request) -> Response:
    session = await sessions.require(request, "member")
    key = request.path_params["key"]
    try:
        stored = await _may_change(request, session, key)
    except NotFound:
        return render.not_found(request)
    if stored.withdrawn:
        return refusal_page(request, Conflict(WITHDRAWN_REASON))
    return _form_page(
        request,
        session,
        values=edit_values(stored.source, i18n.choose_language(request).language),
        key=key,
        photo=current_photo(stored.source),
    )


@html_errors
async def save_offer(request: Request) -> Response:
    session = await sessions.require(request, "member")
    node = node_of(request)
    key = request.path_params["key"]
    try:
        stored = await _may_change(request, session, key)
    except NotFound:
        return render.not_found(request)
    if stored.withdrawn:
        return refusal_page(request, Conflict(WITHDRAWN_REASON))
    form = await read_offer_form(request, session)
    try:
        values = values_sent(form)
        photo = await read_photo(form, node.settings.media_max_bytes)
    finally:
        await form.close()
    current = current_photo(stored.source)
    uploaded: media_service.Media | None = None
    try:
        data = changes(values, stored.source)
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
        await publishing.update_offer(node, key, data, by=_changer(session))
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
    if not await node.db.read(lambda conn: offer_store.photo_in_use(conn, media_key)):
        await media_service.delete(node.db, node.settings.data_dir, media_key)


@html_errors
async def withdraw_offer(request: Request) -> Response:
    session = await sessions.require(request, "member")
    node = node_of(request)
    key = request.path_params["key"]
    try:
        await _may_change(request, session, key)
    except NotFound:
        return render.not_found(request)
    await sessions.read_form(request, session)
    await publishing.withdraw_offer(node, key, by=_changer(session))
    return RedirectResponse(f"/me/offers?withdrawn={key}", status_code=303)


routes: list[BaseRoute] = [
    Route("/me/offers", my_offers, methods=["GET"]),
    Route("/offers/new", new_offer, methods=["GET"]),
    Route("/offers/new", publish, methods=["POST"]),
    Route("/offers/{key}/edit", edit_offer, methods=["GET"]),
    Route("/offers/{key}/edit", save_offer, methods=["POST"]),
    Route("/offers/{key}/withdraw", withdraw_offer, methods=["POST"]),
]
