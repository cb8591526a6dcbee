"""Searching the catalogue, the same way on SQLite (FTS5) and PostgreSQL (tsvector).

A :class:`Query` is built from what a member asks (the JSON API and the command line
share :func:`parse_query`), then :func:`search` turns it into one SQL statement. Text
matches every word of the query, each as the start of a word of the offer, in any of its
languages or its categories' labels. Filters narrow by category, co-op, price and
currency, claim, distance from a point and status. Sorts: relevance (only with text),
recency, price (only within one currency) and distance (only from a point).

Pages follow a cursor: the last row's sort key and id, so that offers arriving while a
member pages do not shift what comes next. Relevance pages by offset: the engines rank
differently, and a rank is not a stable key.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join

from node.catalogue.store import (
    ACTIVE,
    MAX_SCALED_PRICE,
    WITHDRAWN,
    scaled_price,
    unscaled_price,
)
from node.catalogue.text import cell_words, filter_word, query_words
from node.errors import BadRequest, Invalid
from node.storage.tables import offer_categories, offer_claims, offers

SORTS = ("relevance", "recent", "price", "distance")
STATUSES = ("active", "expired", "withdrawn", "any")
EXPIRED = "expired"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_FILTER_VALUES = 10
EARTH_RADIUS_KM = 6371.0088
MAX_PRICE = Decimal("1e12")
# What a cursor may carry: an offset for relevance pages (a walk of a thousand pages of
# a hundred), a row id, and a distance no longer than half the Earth's circumference.
MAX_OFFSET = 100_000
MAX_ID = 2**63 - 1
MAX_DISTANCE_KM = 20_100.0


@dataclass(frozen=True, slots=True)
class Query:
    words: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # any of them
    claims: tuple[str, ...] = ()  # all of them
    coop: str | None = None
    currency: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    near: tuple[float, float] | None = None
    within_km: float | None = None
    status: str = "active"
    sort: str = "recent"
    limit: int = DEFAULT_LIMIT
    cursor: tuple[Any, ...] | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    uri: str
    actor: str
    title: str
    status: str  # active, expired or withdrawn
    currency: str | None
    price: Decimal | None
    unit: str | None
    place: str | None
    distance_km: float | None
    published: datetime
    end_time: datetime | None


@dataclass(frozen=True, slots=True)
class Page:
    hits: list[Hit]
    next_cursor: str | None


def parse_query(params: Mapping[str, Any]) -> Query:
    """Build a query from request parameters (strings, or lists for repeated ones);
    every mistake is an :class:`Invalid` naming the parameter."""
    known = {
        "q", "category", "claim", "coop", "currency", "min_price", "max_price", "near",
        "within_km", "status", "sort", "limit", "cursor",
    }  # fmt: skip
    unknown = sorted(set(params) - known)
    if unknown:
        raise Invalid(f"unknown parameter {unknown[0]!r}", field=unknown[0])
    words = tuple(query_words(_one(params, "q") or ""))
    categories = _many(params, "category")
    claims = _many(params, "claim")
    currency = _one(params, "currency")
    min_price = _price(params, "min_price")
    max_price = _price(params, "max_price")
    if (min_price is not None or max_price is not None) and currency is None:
        raise Invalid("a price range needs a currency (currency=EUR)", field="currency")
    if min_price is not None and max_price is not None and min_price > max_price:
        raise Invalid("min_price is above max_price", field="min_price")
    near = _point(_one(params, "near"))
    within = _one(params, "within_km")
    within_km = None
    if within is not None:
        within_km = _number(within, "within_km", 0, 20_000)
        if near is None:
            raise Invalid("within_km needs a point (near=45.76,4.84)", field="near")
    status = _one(params, "status") or "active"
    if status not in STATUSES:
        raise Invalid(f"status is one of {', '.join(STATUSES)}", field="status")
    sort = _one(params, "sort") or ("relevance" if words else "recent")
    if sort not in SORTS:
        raise Invalid(f"sort is one of {', '.join(SORTS)}", field="sort")
    if sort == "relevance" and not words:
        raise Invalid("sorting by relevance needs words to search (q=...)", field="sort")
    if sort == "price" and currency is None:
        raise Invalid("sorting by price needs a currency (currency=EUR)", field="sort")
    if sort == "distance" and near is None:
        raise Invalid("sorting by distance needs a point (near=45.76,4.84)", field="sort")
    limit_text = _one(params, "limit")
    limit = DEFAULT_LIMIT if limit_text is None else int(_number(limit_text, "limit", 1, MAX_LIMIT))
    try:
        cursor_text = _one(params, "cursor")
    except Invalid as exc:
        raise _bad_cursor(f"this cursor is not one a search gave ({exc.reason})") from None
    return Query(
        words=words,
        categories=categories,
        claims=claims,
        coop=_one(params, "coop"),
        currency=currency,
        min_price=min_price,
        max_price=max_price,
        near=near,
        within_km=within_km,
        status=status,
        sort=sort,
        limit=limit,
        cursor=None if cursor_text is None else _decode_cursor(cursor_text, sort),
    )


def _one(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list | tuple):
        if len(value) > 1:
            raise Invalid(f"give {name} once", field=name)
        value = value[0] if value else None
    if value is None:
        return None
    value = str(value).strip()
    if len(value) > 2048:
        raise Invalid(f"{name} is too long", field=name)
    if "\x00" in value:
        raise Invalid(f"{name} holds a NUL character", field=name)
    return value or None


def _many(params: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = params.get(name)
    values = value if isinstance(value, list | tuple) else ([] if value is None else [value])
    found = tuple(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))
    if len(found) > MAX_FILTER_VALUES:
        raise Invalid(f"at most {MAX_FILTER_VALUES} values of {name}", field=name)
    if any(len(v) > 64 for v in found):
        raise Invalid(f"a {name} is at most 64 characters", field=name)
    if any("\x00" in v for v in found):
        raise Invalid(f"a {name} holds a NUL character", field=name)
    return found


def _number(value: str, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise Invalid(f"{name} must be a number, not {value[:40]!r}", field=name) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise Invalid(f"{name} must be between {low:g} and {high:g}", field=name)
    return number


def _price(params: Mapping[str, Any], name: str) -> Decimal | None:
    value = _one(params, name)
    if value is None:
        return None
    try:
        amount = Decimal(value)
        if not amount.is_finite() or not 0 <= amount <= MAX_PRICE:
            raise InvalidOperation
        scaled_price(amount)
    except (InvalidOperation, ValueError):
        raise Invalid(
            f"{name} must be an amount such as 3.50 (at most 4 decimals)", field=name
        ) from None
    return amount


def _point(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) != 2:
        raise Invalid("near is latitude,longitude (near=45.76,4.84)", field="near")
    return (
        _number(parts[0].strip(), "near", -90, 90),
        _number(parts[1].strip(), "near", -180, 180),
    )


def _encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(value: str, sort: str) -> tuple[Any, ...]:
    """The sort key and id a page ended on, as :func:`search` encoded them. A cursor is
    the node's own token, never written by hand: anything else is a bad request, found
    here, before any of it reaches the database."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        decoded = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError):
        decoded = None
    expected = 1 if sort == "relevance" else 2
    if not isinstance(decoded, list) or len(decoded) != expected:
        raise _bad_cursor(f"this cursor is not one a search sorted by {sort} gave")
    if sort == "relevance":
        return (_whole(decoded[0], 0, MAX_OFFSET),)
    last_id = _whole(decoded[1], 0, MAX_ID)
    if sort == "recent":
        return (_moment(decoded[0]), last_id)
    if sort == "price":
        return (_whole(decoded[0], 0, MAX_SCALED_PRICE), last_id)
    return (_kilometres(decoded[0]), last_id)


def _bad_cursor(reason: str) -> BadRequest:
    return BadRequest(reason, field="cursor")


def _whole(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad_cursor("this cursor is not one a search gave: a position is out of range")
    return value


def _kilometres(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad_cursor("this cursor is not one a search gave: a distance is not a number")
    if not (math.isfinite(value) and 0 <= value <= MAX_DISTANCE_KM):
        raise _bad_cursor("this cursor is not one a search gave: a distance is out of range")
    return float(value)


def _moment(value: Any) -> datetime:
    moment = None
    if isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value)
            moment = None if moment.tzinfo is None else moment.astimezone(UTC)
        except (ValueError, OverflowError):
            moment = None
    if moment is None:
        raise _bad_cursor("this cursor is not one a search gave: a time is not readable")
    return moment


# --- SQL ------------------------------------------------------------------------------


class _DrivingJoin(Join):
    """A join that SQLite must run from its left side: the text matches first, then
    each matching offer by its key. Left to itself, SQLite's planner (which has no
    statistics on the FTS table) may walk an index of offers instead, say every offer in
    euros under a price, and run the text match once per offer: seconds, not
    milliseconds. SQLite reads ``CROSS JOIN`` as "keep this order"."""

    inherit_cache = True


@compiles(_DrivingJoin, "sqlite")
def _compile_cross_join(join: _DrivingJoin, compiler: Any, **kw: Any) -> str:
    assert join.onclause is not None
    kw["asfrom"] = True
    left = join.left._compiler_dispatch(compiler, **kw)
    right = join.right._compiler_dispatch(compiler, **kw)
    on = join.onclause._compiler_dispatch(
        compiler, **{k: v for k, v in kw.items() if k != "asfrom"}
    )
    return f"{left} CROSS JOIN {right} ON {on}"


def _distance(lat: float, lon: float) -> ColumnElement[float]:
    """Great-circle distance in km (haversine), in SQL both engines evaluate alike."""
    dlat = func.radians(offers.c.latitude - lat) / 2
    dlon = func.radians(offers.c.longitude - lon) / 2
    a = func.pow(func.sin(dlat), 2) + math.cos(math.radians(lat)) * func.cos(
        func.radians(offers.c.latitude)
    ) * func.pow(func.sin(dlon), 2)
    return (2 * EARTH_RADIUS_KM * func.asin(func.sqrt(a))).cast(Float)


def _status_filter(status: str, now: datetime) -> ColumnElement[bool] | None:
    live = or_(offers.c.end_time.is_(None), offers.c.end_time > now)
    if status == "active":
        return and_(offers.c.status == ACTIVE, live)
    if status == EXPIRED:
        return and_(offers.c.status == ACTIVE, offers.c.end_time <= now)
    if status == WITHDRAWN:
        return offers.c.status == WITHDRAWN
    return None


def _tsquery(prefixes: tuple[str, ...], exact: list[str], groups: list[list[str]]) -> str:
    terms = [f"{w}:*" if len(w) > 1 else w for w in prefixes] + exact
    for group in groups:
        if group:
            terms.append("(" + " | ".join(group) + ")")
    return " & ".join(terms)


def _box(query: Query) -> tuple[float, float, float, float] | None:
    """South, north, west, east of the circle ``within_km`` of ``near``, or None when
    it wraps a pole or the antimeridian (then only SQL filters)."""
    if query.near is None or query.within_km is None:
        return None
    lat, lon = query.near
    span = query.within_km / 111.0 + 0.01
    cos_lat = math.cos(math.radians(lat))
    if cos_lat <= 0.01 or span / cos_lat >= 180:
        return None
    lon_span = span / cos_lat
    if lon - lon_span < -180 or lon + lon_span > 180 or abs(lat) + span >= 90:
        return None
    return lat - span, lat + span, lon - lon_span, lon + lon_span


def _cells(query: Query) -> list[str]:
    box = _box(query)
    return (cell_words(*box) or []) if box is not None else []


def search(conn: Connection, query: Query, *, now: datetime) -> Page:
    dialect = conn.dialect.name
    distance = _distance(*query.near) if query.near is not None else None
    columns: list[Any] = [
        offers.c.id,
        offers.c.uri,
        offers.c.actor,
        offers.c.title,
        offers.c.status,
        offers.c.currency,
        offers.c.price_e4,
        offers.c.unit,
        offers.c.place,
        offers.c.published,
        offers.c.end_time,
    ]
    if distance is not None:
        columns.append(distance.label("distance"))
    statement: Select[Any] = select(*columns)
    rank: Any = None
    if query.words:
        # Each word as the start of a word (a lone letter as a whole word: "l" of "l'huile"
        # should not match every word in l); the filters as whole words (see text.py).
        exact = [filter_word("claim", c) for c in query.claims]
        if query.coop is not None:
            exact.append(filter_word("coop", query.coop))
        any_of = [filter_word("category", c) for c in query.categories]
        cells = _cells(query)
        if dialect == "sqlite":
            terms = [f'"{w}"*' if len(w) > 1 else f'"{w}"' for w in query.words]
            terms += [f'"{w}"' for w in exact]
            for group in (any_of, cells):
                if group:
                    terms.append("(" + " OR ".join(f'"{w}"' for w in group) + ")")
            match = " AND ".join(terms)
            fts = (
                select(
                    literal_column("rowid").label("offer_id"),
                    literal_column("bm25(offers_fts)").label("rank"),
                )
                .select_from(text("offers_fts"))
                .where(text("offers_fts MATCH :match").bindparams(match=match))
                .subquery("fts")
            )
            statement = statement.select_from(
                _DrivingJoin(fts, offers, fts.c.offer_id == offers.c.id)
            )
            rank = fts.c.rank  # lower is better
        else:
            tsquery = func.to_tsquery(
                literal_column("'simple'"),
                bindparam("tsquery", _tsquery(query.words, exact, [any_of, cells])),
            )
            # Stored by the database from search_text (migration 0011), GIN-indexed.
            vector: ColumnElement[Any] = literal_column("offers.search_vector")
            statement = statement.where(vector.op("@@")(tsquery))
            rank = -func.ts_rank(vector, tsquery)  # negated: lower is better, as bm25
    conditions: list[ColumnElement[bool]] = []
    status = _status_filter(query.status, now)
    if status is not None:
        conditions.append(status)
    # With words, categories and claims are matched by the text index (their reserved
    # words are exact); without, by their tables.
    if query.categories and not query.words:
        conditions.append(
            exists().where(
                offer_categories.c.offer_id == offers.c.id,
                offer_categories.c.slug.in_(query.categories),
            )
        )
    for claim in () if query.words else query.claims:
        conditions.append(
            exists().where(offer_claims.c.offer_id == offers.c.id, offer_claims.c.claim == claim)
        )
    if query.coop is not None:
        conditions.append(offers.c.actor == query.coop)
    if query.currency is not None:
        conditions.append(offers.c.currency == query.currency)
    if query.min_price is not None:
        conditions.append(offers.c.price_e4 >= scaled_price(query.min_price))
    if query.max_price is not None:
        conditions.append(offers.c.price_e4 <= scaled_price(query.max_price))
    if query.near is not None and (distance is not None) and query.within_km is not None:
        box = _box(query)
        if box is not None:
            south, north, west, east = box
            conditions.append(offers.c.latitude.between(south, north))
            conditions.append(offers.c.longitude.between(west, east))
        conditions.append(distance <= query.within_km)
    if query.sort == "distance":
        conditions.append(offers.c.latitude.is_not(None))
    order, after = _order(query, rank, distance)
    if after is not None:
        conditions.append(after)
    statement = statement.where(*conditions).order_by(*order).limit(query.limit + 1)
    if query.sort == "relevance" and query.cursor is not None:
        statement = statement.offset(query.cursor[0])
    rows = conn.execute(statement).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    hits = [_hit(row, now) for row in rows]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        if query.sort == "relevance":
            offset = (query.cursor[0] if query.cursor else 0) + len(rows)
            next_cursor = _encode_cursor([offset])
        elif query.sort == "recent":
            next_cursor = _encode_cursor([last.published.isoformat(), last.id])
        elif query.sort == "price":
            next_cursor = _encode_cursor([last.price_e4, last.id])
        else:
            next_cursor = _encode_cursor([last.distance, last.id])
    return Page(hits=hits, next_cursor=next_cursor)


def _order(
    query: Query, rank: Any, distance: ColumnElement[float] | None
) -> tuple[list[Any], ColumnElement[bool] | None]:
    cursor = query.cursor
    if query.sort == "relevance":
        return [rank, offers.c.published.desc(), offers.c.id.desc()], None
    if query.sort == "recent":
        after = None
        if cursor is not None:
            moment, last_id = cursor
            after = or_(
                offers.c.published < moment,
                and_(offers.c.published == moment, offers.c.id < last_id),
            )
        return [offers.c.published.desc(), offers.c.id.desc()], after
    if query.sort == "price":
        after = None
        if cursor is not None:
            price, last_id = cursor
            after = or_(
                offers.c.price_e4 > price, and_(offers.c.price_e4 == price, offers.c.id > last_id)
            )
        return [offers.c.price_e4.asc(), offers.c.id.asc()], after
    assert distance is not None
    after = None
    if cursor is not None:
        km, last_id = cursor
        after = or_(distance > km, and_(distance == km, offers.c.id > last_id))
    return [distance.asc(), offers.c.id.asc()], after


def _hit(row: Any, now: datetime) -> Hit:
    status = row.status
    if status == ACTIVE and row.end_time is not None and row.end_time <= now:
        status = EXPIRED
    return Hit(
        uri=row.uri,
        actor=row.actor,
        title=row.title,
        status=status,
        currency=row.currency,
        price=None if row.price_e4 is None else unscaled_price(row.price_e4),
        unit=row.unit,
        place=row.place,
        distance_km=getattr(row, "distance", None),
        published=row.published,
        end_time=row.end_time,
    )
