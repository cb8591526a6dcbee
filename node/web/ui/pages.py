"""The pages members open in a browser: the co-op's profile, the catalogue and its
search, and a page per offer (ours at its id, a federated one under ``/catalogue``).

Offer ids answer HTML only to a client that asks for ``text/html`` and prefers it to
ActivityStreams; every other client (no ``Accept``, ``*/*``, a peer) gets the JSON the
id has always served.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from federation.mediatypes import wants_html
from federation.resources import on_disk
from node import documents
from node.catalogue import search as catalogue
from node.discussion import threads
from node.errors import BadRequest, Invalid, NotFound
from node.offers import categories, reading, titles
from node.offers import store as offer_store
from node.offers.currencies import ITEM_BY_CODE
from node.offers.markdown import sanitise_html
from node.offers.remote import RemoteOffer, RemoteOfferError, from_proposal
from node.services import identity
from node.services.remote_actors import Label
from node.storage.ids import is_row_id
from node.web import offers as offer_routes
from node.web.responses import node_of
from node.web.templates import STATIC_DIR
from node.web.ui import i18n, sessions
from node.web.ui.render import page

STATUSES = ("active", "expired", "withdrawn", "any")
SORTS = ("recent", "relevance", "price")
# Parameters of the page itself, not of the search.
PAGE_PARAMETERS = frozenset({"lang"})
LINK_REL = "nofollow noopener noreferrer"
# Sanitised HTML: a heading tag carries no attributes.
_HEADING = re.compile(r"<(/?)h([1-6])>")


# The stylesheet and whatever else pages need, served by the node itself.
static_mount = Mount("/static", app=StaticFiles(directory=on_disk(STATIC_DIR)), name="static")


# --- the profile ---------------------------------------------------------------------


async def home(request: Request) -> Response:
    await sessions.current(request)
    node = node_of(request)
    choice = i18n.choose_language(request)
    handle = node.settings.handle
    row = await node.db.read(lambda conn: identity.find_profile(conn, handle))
    if row is None:
        return _not_found(request, choice)
    return page(
        request,
        choice,
        "home.html",
        {
            "coop_name": row.name,
            "summary_html": documents.summary_html(row.summary),
            "handle": f"@{handle}@{node.settings.domain}",
            "actor_id": node.urls.actor(handle),
        },
    )


# --- the catalogue -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Card:
    title: str
    href: str
    status: str
    price: Decimal | None
    currency: str | None
    unit: str | None
    place: str | None
    coop: str
    origin: str
    local: bool
    published: datetime
    language: str | None = None  # the title's, where it is not the page's


def _card_title(document: str, fallback: str, language: str) -> tuple[str, str | None]:
    """The offer's title in the page's language where it has one (its ``nameMap``), and
    its language where it is not the page's."""
    title, tag = titles.title_of(document, fallback, [language])
    return title, None if tag is None or tag.split("-")[0].lower() == language else tag


def _search_params(request: Request) -> dict[str, list[str]]:
    """The query string as the JSON API reads it, without the page's own parameters."""
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name not in PAGE_PARAMETERS:
            params.setdefault(name, []).append(value)
    return params


def _coop(label: Label | None, actor: str) -> str:
    """What a peer's co-op is called on a card or a page: the name its actor gives,
    cut short, else its host."""
    if label is None or label.name is None:
        return _host(actor)
    return label.name.strip()[:200]


async def catalogue_page(request: Request) -> Response:
    await sessions.current(request)
    node = node_of(request)
    choice = i18n.choose_language(request)
    params = _search_params(request)
    form = {name: values[0] for name, values in params.items() if values}
    context: dict[str, Any] = {
        "form": form,
        "chosen_categories": set(params.get("category", [])),
        "categories": _category_options(choice.language),
        "currencies": _currencies(),
        "statuses": STATUSES,
        "sorts": SORTS,
        "cards": [],
        "next_href": None,
        "first_href": None,
        "error": None,
    }
    handle = node.settings.handle
    local_actor = node.urls.actor(handle)
    try:
        query = catalogue.parse_query(params)
    except (Invalid, BadRequest) as exc:  # a bad cursor is a BadRequest
        context["error"] = exc.reason
        context["coop_name"] = await node.db.read(lambda conn: identity.find_name(conn, handle))
        return page(request, choice, "catalogue.html", context, status=400)
    now = node.clock.now()

    read = await node.db.read(
        lambda conn: reading.read_catalogue(
            conn, query, now=now, local_actor=local_actor, handle=handle
        )
    )
    found, coop_name = read.page, read.coop_name
    cards = []
    for hit in found.hits:
        row = read.linked.get(hit.uri)
        local = row is not None and row.local
        if local:
            href = urlsplit(hit.uri).path
        elif row is not None:
            href = f"/catalogue/offers/{row.id}"
        else:  # pragma: no cover - the same read found it
            href = hit.uri
        title, title_language = (
            (hit.title, None)
            if row is None
            else _card_title(row.document, hit.title, choice.language)
        )
        cards.append(
            Card(
                title=title,
                language=title_language,
                href=href,
                status=hit.status,
                price=hit.price,
                currency=hit.currency,
                unit=hit.unit,
                place=hit.place,
                coop=(coop_name or "") if local else _coop(read.labels.get(hit.actor), hit.actor),
                origin=_host(hit.actor),
                local=local,
                published=hit.published,
            )
        )
    context["cards"] = cards
    context["coop_name"] = coop_name
    # The language is in the cookie by now: links of the page need not carry it.
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "lang")]
    if found.next_cursor is not None:
        context["next_href"] = "/catalogue?" + urlencode([*kept, ("cursor", found.next_cursor)])
    if "cursor" in params:
        context["first_href"] = "/catalogue?" + urlencode(kept) if kept else "/catalogue"
    return page(request, choice, "catalogue.html", context)


def _host(uri: str) -> str:
    return urlsplit(uri).netloc or uri


@functools.cache
def _category_options(language: str) -> list[tuple[str, str]]:
    return sorted(
        ((slug, c.label(language)) for slug, c in categories.all_categories().items()),
        key=lambda option: option[1].casefold(),
    )


@functools.cache
def _currencies() -> list[str]:
    return ["EUR", *sorted(code for code in ITEM_BY_CODE if code != "EUR")]


# --- offers --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferView:
    title: str
    language: str | None
    description_html: str
    description_language: str | None
    status: str
    price: Decimal | None
    currency: str | None
    unit: str | None
    unit_quantity: Decimal | None
    available: Decimal | None
    place: str | None
    categories: list[str]
    claims: list[str]
    published: datetime | None
    end_time: datetime | None
    origin_url: str | None
    # Photos stored by this node: (URL, description). A peer's photos stay on the
    # peer: the page links to the offer there rather than have a reader's browser
    # fetch from a server the reader did not choose.
    photos: tuple[tuple[str, str], ...] = ()


def _offer_view(
    row: offer_store.Shown, language: str, now: datetime, media_prefix: str = ""
) -> OfferView:
    """What an offer page shows, from the stored document. Its HTML is sanitised here,
    whatever was stored."""
    try:
        document = json.loads(row.document)
    except ValueError:
        document = {}
    remote: RemoteOffer | None
    try:
        remote = from_proposal(document)
    except RemoteOfferError:
        remote = None
    status = "withdrawn" if row.withdrawn else "active"
    if status == "active" and row.end_time is not None and row.end_time <= now:
        status = "expired"
    price = row.price
    if remote is None:
        content = document.get("content") if isinstance(document, dict) else None
        return OfferView(
            title=row.title,
            language=None,
            description_html=_shift_headings(sanitise_html(content))
            if isinstance(content, str)
            else "",
            description_language=None,
            status=status,
            price=price,
            currency=row.currency,
            unit=row.unit,
            unit_quantity=None,
            available=None,
            place=row.place,
            categories=[],
            claims=[],
            published=row.published,
            end_time=row.end_time,
            origin_url=None,
        )
    title, title_language = titles.in_language(remote.titles, [language])
    description, description_language = titles.in_language(remote.descriptions_html, [language])
    labels = [
        found.label(language)
        for found in (categories.get(slug) for slug in remote.categories)
        if found is not None
    ]
    return OfferView(
        title=title or row.title,
        language=title_language,
        description_html=_shift_headings(sanitise_html(description)),
        description_language=description_language,
        status=status,
        price=None if remote.price is None else remote.price.amount,
        currency=row.currency,
        unit=remote.unit,
        unit_quantity=remote.unit_quantity,
        available=remote.available,
        place=None if remote.location is None else remote.location.name,
        categories=labels,
        claims=[claim.replace("_", " ") for claim in remote.claims.known],
        published=remote.published or row.published,
        end_time=remote.end_time,
        origin_url=remote.url if _is_web_url(remote.url) else None,
        photos=tuple(
            (image.url, image.description)
            for image in remote.images
            if media_prefix and image.url.startswith(media_prefix) and ".." not in image.url
        ),
    )


def _shift_headings(fragment: str) -> str:
    """Headings of an offer's description sit under the page's h1 and h2."""
    return _HEADING.sub(lambda m: f"<{m[1]}h{min(int(m[2]) + 2, 6)}>", fragment)


def _is_web_url(url: str | None) -> bool:
    return url is not None and urlsplit(url).scheme in ("http", "https")


async def offer(request: Request) -> Response:
    """``/offers/KEY``: HTML for a browser, else the ActivityStreams object as before."""
    if not wants_html(request.headers.get("accept")):
        return await offer_routes.offer_object(request)
    return await _local_offer_page(request)


async def refused_question(request: Request, thread_form: dict[str, Any]) -> Response:
    """The offer's page again, the refused question as typed beside its form (422)."""
    return await _local_offer_page(request, thread_form=thread_form, status=422)


async def _local_offer_page(
    request: Request, *, thread_form: dict[str, Any] | None = None, status: int | None = None
) -> Response:
    node = node_of(request)
    choice = i18n.choose_language(request)
    key = request.path_params["key"]
    uri = node.urls.offer(key)
    handle = node.settings.handle
    session = await sessions.current(request)
    read = await node.db.read(lambda conn: reading.read_local_offer(conn, uri, handle=handle))
    questions: dict[str, Any] = {}
    if node.settings.offer_questions and read.offer is not None:
        admin = session is not None and session.role == "admin"
        try:
            thread = await threads.offer_thread(node, key, admin=admin)
        except NotFound:
            thread = None
        questions = {
            "thread": thread,
            # The key of the offer's address (the thread's root.key is the row's id).
            "offer_key": key,
            "thread_form": thread_form,
            "thread_notice": request.query_params.get("comment"),
            "csrf": None if session is None else session.csrf,
        }
    response = _offer_page(request, choice, read, alternate=uri, more=questions, status=status)
    if questions and session is not None:
        response.headers["Cache-Control"] = "no-store"  # the page holds the form's token
    return response


async def catalogue_offer(request: Request) -> Response:
    """``/catalogue/offers/ID``: an offer of the catalogue, a federated one as a rule."""
    choice = i18n.choose_language(request)
    offer_id = request.path_params["offer_id"]
    if not is_row_id(offer_id):  # beyond any row, and beyond what SQL can compare
        return _not_found(request, choice)
    node = node_of(request)
    handle = node.settings.handle
    await sessions.current(request)
    read = await node.db.read(
        lambda conn: reading.read_catalogue_offer(conn, offer_id, handle=handle)
    )
    return _offer_page(request, choice, read)


def _offer_page(
    request: Request,
    choice: i18n.Choice,
    read: reading.OfferRead,
    *,
    alternate: str | None = None,
    more: dict[str, Any] | None = None,
    status: int | None = None,
) -> Response:
    """An offer's page; ``more`` adds to what the template gets (an offer's questions),
    ``status`` replaces the page's own (a refused question: 422)."""
    node = node_of(request)
    row, coop_name = read.offer, read.coop_name
    if row is None:
        return _not_found(request, choice, coop_name)
    local = row.local
    view = _offer_view(
        row, choice.language, node.clock.now(), f"{node.urls.base}/media/" if local else ""
    )
    response = page(
        request,
        choice,
        "offer.html",
        {
            "coop_name": coop_name,
            "offer": view,
            "local": local,
            "coop": (coop_name or "") if local else _coop(read.label, row.actor),
            "origin": _host(row.actor),
            "uri": row.uri,
            "alternate": alternate,
            "link_rel": LINK_REL,
            **(more or {}),
        },
        status=status or (410 if local and view.status == "withdrawn" else 200),
    )
    return response


def _not_found(request: Request, choice: i18n.Choice, coop_name: str | None = None) -> Response:
    node = node_of(request)
    return page(
        request,
        choice,
        "not_found.html",
        {"coop_name": coop_name or node.settings.name},
        status=404,
    )
