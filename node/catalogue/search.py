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
import functools
import json
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy import text as text_clause
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import Join

from node.catalogue.recent_store import (
    PUBLISHED,
    published_from,
    published_literal,
    recent_condition,
    recent_tiers,
)
from node.catalogue.store import (
    ACTIVE,
    MAX_SCALED_PRICE,
    WITHDRAWN,
    scaled_price,
    unscaled_price,
)
from node.catalogue.text import (
    RESERVED,
    ceiling_words,
    cell_words,
    filter_word,
    price_words,
    query_words,
    region_words,
)
from node.errors import BadRequest, Invalid
from node.storage.tables import catalogue_words, offer_categories, offer_claims, offers

SORTS = ("relevance", "recent", "price", "distance")
STATUSES = ("active", "expired", "withdrawn", "any")
EXPIRED = "expired"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_FILTER_VALUES = 10
EARTH_RADIUS_KM = 6371.0088
MAX_PRICE = Decimal("1e12")
# What a cursor may carry: an offset for relevance pages (a walk of a thousand pages of
# a hundred), a row id (32 bits on PostgreSQL, which refuses to compare a larger number
# with one), and a distance no longer than half the Earth's circumference.
MAX_OFFSET = 100_000
MAX_ID = 2**31 - 1
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
#
# A search with words is planned here rather than by the engines, which cannot tell how
# many offers a word matches (SQLite keeps no statistics on its text index; PostgreSQL's
# estimates for prefixes are often ten times off). Left to themselves they read every
# matching offer to keep twenty: on a million offers, a word such as a town's name
# matches tens of thousands. So a search first counts what its price range or co-op
# matches (in their indexes) and what its words match (SQLite counts in FTS5, only when
# a filter was counted to weigh them against; PostgreSQL, where counting costs as much
# as finding, gives its estimate), each no further than it matters, then takes the plan
# that reads the fewest offers (_Sizes):
#
# * "filter": the price range or co-op read whole by its index, each offer's words
#   checked;
# * "walk" (PostgreSQL): the offers read in the page's order (newest first; by
#   relevance, the last stored first), each checked, up to a bound; when the walk ends
#   before the page is full, the text index drives instead;
# * "text": the text index drives. SQLite's yields matches newest first to the hour of
#   their publication (see _HOUR_SHIFT), so that, sorted by recency or relevance, it
#   reads only until the page (or the candidates) are found; PostgreSQL's, sorted by
#   recency, is asked for the newest periods of publication first (see PERIOD_SECONDS).
#
# By relevance, the CANDIDATES matching offers published last (SQLite, to the hour) or
# stored last (PostgreSQL) are ranked (all of them when fewer match). On PostgreSQL they
# are asked first of the smallest of its recent indexes (text indexes over the last
# offers stored only, see recent_store.py) that likely holds them, as the last stored
# show: it reads the rows of its own matches only. A catalogue of at most SMALL offers
# is searched by the text index alone.
#
# Relevance is computed from the offer's searchable words, the same way on both
# engines: first the offers with more of the query's words in their title, then the
# shorter texts (an offer about the words, rather than one that mentions them among
# many; what BM25 comes down to when every word appears once), then the newest.

# A driver (a price range, the text index) matching at most "few" offers is read whole,
# its offers checked one by one; "few" grows with the catalogue (see _few), from this.
NARROW = 1_000
# A catalogue of at most this many offers (most co-ops' own) is searched by the text
# index alone: counting first would cost more than it saves.
SMALL = 10_000
# PostgreSQL: the last offers stored that a search by relevance reads to measure how
# many match, when its estimate cannot tell (see _worth_sampling).
SAMPLED = 2_000
# How many more matches than it needs the last stored must show for a walk to begin:
# their share is measured on a few thousand offers, and a walk that ends short has read
# its whole bound in vain (a recent index that holds too few costs far less: it is read
# as soon as the share shows it may hold enough).
WALK_MARGIN = 1.5
# A word is asked of the text index as the words it begins when there are at most
# this many of them.
SPELLED = 8
# PostgreSQL: its text index is asked for the words of a price range's ceiling when
# they likely hold at most this share of the offers (see _ceiling).
CEILING_SHARE = 0.5
# PostgreSQL: its text index is asked for a circle's regions rather than its cells when
# they likely hold at most this many times the cells' offers (see _regions).
REGION_GROWTH = 1.5
# The matching offers a search by relevance ranks at most: the newest.
CANDIDATES = 1_000
# SQLite's text index keys each offer as (hour << _HOUR_SHIFT) | id, the hours counted
# from 1970 to its publication (migration 0023), so that it yields matches newest first
# to the hour. Ids take 32 bits: four billion offers stored.
_HOUR_SHIFT = 32
_ID_MASK = (1 << _HOUR_SHIFT) - 1


# PostgreSQL's text index holds one more word of each offer (migration 0024): its
# period of publication, "zzt" and the number of periods of PERIOD_SECONDS since 1970.
# A search sorted by recency asks for the matches of the newest periods first, and of
# older ones only until it has its page (see _newest_by_period), instead of reading
# every match, which PostgreSQL's text index yields unordered.
PERIOD_SECONDS = 256 * 3600
# The periods named in one query at most: past them, the rest of the catalogue is asked.
MAX_PERIODS = 64


# The same key read from an offer (SQLite), as migration 0023 computes it.
_HOUR_KEY: ColumnElement[int] = literal_column(
    "((max(0, coalesce(CAST(strftime('%s', offers.published) AS INTEGER), 0) / 3600) << 32)"
    " | offers.id)",
    Integer,
)


def _hour(moment: datetime) -> int:
    """The hour of ``moment`` as SQLite's text index keys it (0 before 1970)."""
    return max(0, int(moment.timestamp()) // 3600)


def _statement(make: Any) -> Any:
    """``make`` (a function of hashable arguments returning a statement) made once per
    arguments: the same statement object, whose SQL SQLAlchemy compiles once."""
    return functools.lru_cache(maxsize=STATEMENTS)(make)


# The statements kept per kind: the benchmark's 1,000 searches make 50 to 63 shapes of
# each (about 40 kB a statement, compiled).
STATEMENTS = 128


def _value(name: str, type_: Any) -> Any:
    return bindparam(name, type_=type_)


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


@dataclass(frozen=True, slots=True)
class _Text:
    """What a search's words ask of an offer's searchable words: each word as the start
    of one of them (a lone letter as a whole word: "l" of "l'huile" should not match
    every word in l), every filter word whole, and one word of each group (categories,
    the cells of a circle), whole. Filters are indexed as words (see text.py).

    The text index is asked, for each word, for the catalogue's words it begins
    (``spelled``) when there are few, and for the prefix only when there are many."""

    words: tuple[str, ...]
    spelled: tuple[tuple[str, ...] | None, ...]
    exact: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]  # the categories' words, when asked
    # The cells of the query's circle, when asked.
    cells: tuple[str, ...] = ()
    # Words of which one holds each offer in the query's price range, asked of the text
    # index only (see priced).
    prices: tuple[str, ...] = ()
    # PostgreSQL: the regions asked of its text index for the cells (see located).
    regions: tuple[str, ...] = ()

    @classmethod
    def of(cls, conn: Connection, query: Query) -> _Text | None:
        """None when a word begins no word of the catalogue: nothing can match."""
        spelled = _completions(conn, query.words)
        if () in spelled:
            return None
        exact = [filter_word("claim", c) for c in query.claims]
        if query.coop is not None:
            exact.append(filter_word("coop", query.coop))
        categories = tuple(filter_word("category", c) for c in query.categories)
        groups = (categories,) if categories else ()
        return cls(query.words, spelled, tuple(exact), groups, tuple(_cells(query)))

    def priced(self, prices: tuple[str, ...]) -> _Text:
        """The same, the text index asked for one of the words ``prices`` of the query's
        price range too (see text.py). Offers read one by one are not: SQL compares
        their prices exactly, at less cost than a search of their words for more."""
        return replace(self, prices=prices)

    def located(self, regions: tuple[str, ...]) -> _Text:
        """The same, PostgreSQL's text index asked for one of the ``regions`` of the
        circle (see text.py) rather than of its cells. Offers read one by one are
        checked for the cells still: the regions are PostgreSQL's words only."""
        assert self.cells
        return replace(self, regions=regions)

    def all_groups(self, *, indexed: bool) -> tuple[tuple[str, ...], ...]:
        """The groups of words of which an offer holds one: of the categories, of the
        circle, and (``indexed``: as its text index is asked) of the price range, the
        circle's regions rather than its cells where PostgreSQL's is asked for them."""
        circle = self.regions if indexed and self.regions else self.cells
        prices = self.prices if indexed else ()
        return tuple(group for group in (*self.groups, circle, prices) if group)

    def fts_match(self) -> str:
        """As an FTS5 query (SQLite)."""
        terms = []
        for word, spelled in zip(self.words, self.spelled, strict=True):
            if spelled is None:
                terms.append(f'"{word}"*' if len(word) > 1 else f'"{word}"')
            else:
                terms.append("(" + " OR ".join(f'"{w}"' for w in spelled) + ")")
        terms += [f'"{w}"' for w in self.exact]
        groups = self.all_groups(indexed=True)
        terms += ["(" + " OR ".join(f'"{w}"' for w in group) + ")" for group in groups]
        return " AND ".join(terms)

    def tsquery(self) -> str:
        """As a tsquery (PostgreSQL)."""
        terms = []
        for word, spelled in zip(self.words, self.spelled, strict=True):
            if spelled is None:
                terms.append(f"{word}:*" if len(word) > 1 else word)
            else:
                terms.append("(" + " | ".join(spelled) + ")")
        terms += list(self.exact)
        terms += ["(" + " | ".join(group) + ")" for group in self.all_groups(indexed=True)]
        return " & ".join(terms)

    def needles(self) -> dict[str, str]:
        """The values of the test on one offer's ``search_text`` that plans reading
        offers one by one make (see _check), and of the words' places in its title (see
        _relevance): each word as the start of one of its words (a lone letter, whole),
        each filter word and each word of the groups whole (the price range's and the
        regions left out: SQL compares prices and distances exactly)."""
        found = {f"w{i}": f" {w} " if len(w) == 1 else f" {w}" for i, w in enumerate(self.words)}
        found |= {f"x{i}": f" {w} " for i, w in enumerate(self.exact)}
        for i, group in enumerate(self.all_groups(indexed=False)):
            found |= {f"g{i}_{j}": f" {w} " for j, w in enumerate(group)}
        return found


class _Holds(FunctionElement[bool]):
    """Whether an offer's ``search_text``, a space added at each end, holds any of the
    needles (bound values). One element, where SQLAlchemy's operators made five of each
    needle."""

    type = Boolean()
    name = "holds"
    inherit_cache = True
    _is_implicitly_boolean = True  # a test already: no "= 1" where booleans are numbers


def _finder(compiler: Any) -> str:
    """The SQL function that tells where a needle starts in a text, or 0: instr() on
    SQLite, strpos() on PostgreSQL."""
    return "instr" if compiler.dialect.name == "sqlite" else "strpos"


@compiles(_Holds)
def _compile_holds(element: _Holds, compiler: Any, **kw: Any) -> str:
    found = _finder(compiler)
    text, *needles = (compiler.process(clause, **kw) for clause in element.clauses)
    tests = " OR ".join(f"{found}(' ' || {text} || ' ', {needle}) > 0" for needle in needles)
    return f"({tests})"


def _completions(conn: Connection, words: tuple[str, ...]) -> tuple[tuple[str, ...] | None, ...]:
    """For each word, the catalogue's words it begins (a lone letter: itself, if it is
    one), when there are at most SPELLED of them; None when there are more, or for a
    word the catalogue's words leave out (the reserved words of filters). In one
    statement for all the words."""
    asked: list[tuple[int, str]] = []
    values: dict[str, Any] = {"limit": SPELLED + 1}
    for i, word in enumerate(words):
        if word.startswith(RESERVED):
            continue
        if len(word) == 1:
            asked.append((i, "known"))
            values[f"word{i}"] = word
        elif ord(word[-1]) < sys.maxunicode:
            # The words beginning with ``word`` sort from it to the next string of its
            # length.
            asked.append((i, "begun"))
            values |= {f"word{i}": word, f"upper{i}": word[:-1] + chr(ord(word[-1]) + 1)}
    found: dict[int, list[str]] = {i: [] for i, _ in asked}
    if asked:
        for n, word in conn.execute(_spelled(tuple(asked)), values):
            found[n].append(word)
    return tuple(
        None if i not in found or len(found[i]) > SPELLED else tuple(sorted(found[i]))
        for i in range(len(words))
    )


@_statement
def _spelled(asked: tuple[tuple[int, str], ...]) -> Any:
    """The catalogue's words each word asked (its number, and "known" for a lone letter,
    "begun" for a prefix) stands for, at most the value "limit" of them a prefix."""
    word = catalogue_words.c.word
    parts = []
    for i, kind in asked:
        looked_up = select(word)
        if kind == "known":
            looked_up = looked_up.where(word == _value(f"word{i}", String()))
        else:
            looked_up = (
                looked_up.where(
                    word >= _value(f"word{i}", String()), word < _value(f"upper{i}", String())
                )
                .order_by(word)
                .limit(_value("limit", Integer()))
            )
        each = looked_up.subquery()
        parts.append(select(literal_column(str(i), Integer).label("n"), each.c.word))
    return parts[0] if len(parts) == 1 else union_all(*parts)


class _InTitle(FunctionElement[int]):
    """1 where an offer's ``search_text``, a space added at each end, holds the needle
    (bound) no further than its title's length (the title's words come first), else 0.
    One element, where SQLAlchemy's operators made a dozen for each word of a search
    (and PostgreSQL found the needle twice in each offer ranked)."""

    type = Integer()
    name = "in_title"
    inherit_cache = True


@compiles(_InTitle)
def _compile_in_title(element: _InTitle, compiler: Any, **kw: Any) -> str:
    found = _finder(compiler)
    text, title, needle = (compiler.process(clause, **kw) for clause in element.clauses)
    return (
        f"CASE WHEN {found}(' ' || {text} || ' ', {needle}) BETWEEN 1 AND length({title}) "
        "THEN 1 ELSE 0 END"
    )


# --- Statements, made once per shape --------------------------------------------------
#
# A search's statements depend on what it asks (which filters, how many words, its sort)
# far more often than on the values it asks for: each is made once per _Shape and kept
# (see _statement), its values bound at each execution (see _values). Made anew for
# each search, they cost more time than most of their executions (4 to 6 ms a search
# at 1,000,000 offers on PostgreSQL, of 20 to 30).


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a search's statements are made of, its values aside."""

    dialect: str
    sort: str
    status: str
    words: int  # the query's words (each a needle, see _Text.needles)
    exact: int  # its filter words (claims, co-op), with words
    groups: tuple[int, ...]  # the words of each group checked on an offer
    categories: bool  # a category asked (matched by its table without words)
    claims: int  # claims asked (matched by their table without words)
    coop: bool
    currency: bool
    min_price: bool
    max_price: bool
    near: bool
    within: bool  # a circle around ``near``
    box: bool  # the circle's box (None when it wraps a pole or the antimeridian)
    cursor: bool

    @classmethod
    def of(cls, dialect: str, query: Query, text: _Text | None) -> _Shape:
        return cls(
            dialect=dialect,
            sort=query.sort,
            status=query.status,
            words=len(text.words) if text is not None else 0,
            exact=len(text.exact) if text is not None else 0,
            groups=(
                tuple(len(group) for group in text.all_groups(indexed=False))
                if text is not None
                else ()
            ),
            categories=bool(query.categories),
            claims=len(query.claims),
            coop=query.coop is not None,
            currency=query.currency is not None,
            min_price=query.min_price is not None,
            max_price=query.max_price is not None,
            near=query.near is not None,
            within=query.within_km is not None,
            box=_box(query) is not None,
            cursor=query.cursor is not None,
        )


def _values(query: Query, now: datetime, text: _Text | None) -> dict[str, Any]:
    """The values a search's statements are executed with, by name (see _Shape); a
    statement takes those it names."""
    values: dict[str, Any] = {"now": now, "limit": query.limit + 1, "candidates": CANDIDATES}
    if query.categories:
        values["categories"] = list(query.categories)
    values |= {f"claim{i}": claim for i, claim in enumerate(query.claims)}
    if query.coop is not None:
        values["coop"] = query.coop
    if query.currency is not None:
        values["currency"] = query.currency
    if query.min_price is not None:
        values["min_price"] = scaled_price(query.min_price)
    if query.max_price is not None:
        values["max_price"] = scaled_price(query.max_price)
    if query.near is not None:
        lat, lon = query.near
        values |= {"lat": lat, "lon": lon, "cos_lat": math.cos(math.radians(lat))}
    if query.within_km is not None:
        values["within_km"] = query.within_km
    box = _box(query)
    if box is not None:
        values |= dict(zip(("south", "north", "west", "east"), box, strict=True))
    cursor = query.cursor
    if cursor is not None:
        if query.sort == "relevance":
            values["offset"] = cursor[0]
        else:
            after = {"recent": "after_moment", "price": "after_price"}.get(query.sort, "after_km")
            values |= {after: cursor[0], "after_id": cursor[1]}
    if text is not None:
        values |= text.needles()
    return values


_NOW = _value("now", offers.c.end_time.type)
_LIMIT = _value("limit", Integer())
_LAT, _LON, _COS_LAT = (_value(name, Float()) for name in ("lat", "lon", "cos_lat"))


def _relevance(t: Any, shape: _Shape) -> list[Any]:
    """The order of relevance (see above): the query's words found in the title (its
    words come first in ``search_text``, so a word found no further than the title's
    length is one of them; a lone letter as a whole word), then the shorter texts,
    then the newest."""
    in_title = [
        _InTitle(t.c.search_text, t.c.title, _value(f"w{i}", String())) for i in range(shape.words)
    ]
    title_words = in_title[0] if len(in_title) == 1 else sum(in_title[1:], in_title[0])
    return [title_words.desc(), func.length(t.c.search_text), t.c.published.desc(), t.c.id.desc()]


def _check(t: Any, shape: _Shape) -> ColumnElement[bool]:
    """The test of a search's words on one offer's ``search_text`` (its words, each once,
    between single spaces), for plans that read offers one by one: each needle of
    _Text.needles, one of each group's."""
    needles = [[f"w{i}"] for i in range(shape.words)] + [[f"x{i}"] for i in range(shape.exact)]
    needles += [[f"g{i}_{j}" for j in range(size)] for i, size in enumerate(shape.groups)]
    return and_(
        *(_Holds(t.c.search_text, *(_value(name, String()) for name in names)) for names in needles)
    )


def _distance(t: Any) -> ColumnElement[float]:
    """Great-circle distance in km (haversine) from the query's point, in SQL both
    engines evaluate alike."""
    return _Haversine(t.c.latitude, t.c.longitude, _LAT, _LON, _COS_LAT)


class _Haversine(FunctionElement[float]):
    """The haversine as one element: of an offer's latitude and longitude, and the
    point's latitude, longitude and latitude's cosine (bound values)."""

    type = Float()
    name = "haversine"
    inherit_cache = True


@compiles(_Haversine)
def _compile_haversine(element: _Haversine, compiler: Any, **kw: Any) -> str:
    latitude, longitude, lat, lon, cos_lat = (
        compiler.process(clause, **kw) for clause in element.clauses
    )
    half_dlat = f"sin(radians({latitude} - {lat}) / 2)"
    half_dlon = f"sin(radians({longitude} - {lon}) / 2)"
    a = f"pow({half_dlat}, 2) + {cos_lat} * cos(radians({latitude})) * pow({half_dlon}, 2)"
    return f"CAST({2 * EARTH_RADIUS_KM!r} * asin(sqrt({a})) AS FLOAT)"


def _status_filter(t: Any, status: str) -> ColumnElement[bool] | None:
    live = or_(t.c.end_time.is_(None), t.c.end_time > _NOW)
    if status == "active":
        return and_(t.c.status == ACTIVE, live)
    if status == EXPIRED:
        return and_(t.c.status == ACTIVE, t.c.end_time <= _NOW)
    if status == WITHDRAWN:
        withdrawn: ColumnElement[bool] = t.c.status == WITHDRAWN
        return withdrawn
    return None


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


# The columns a page shows, and those its plans read.
_SHOWN = ("id", "uri", "actor", "title", "status", "currency", "price_e4", "unit", "place")
_READ = (*_SHOWN, "published", "end_time", "latitude", "longitude", "search_text")


def _columns(t: Any, shape: _Shape) -> list[Any]:
    columns: list[Any] = [t.c[name] for name in (*_SHOWN, "published", "end_time")]
    if shape.near:
        columns.append(_distance(t).label("distance"))
    return columns


def _filters(
    t: Any, shape: _Shape, *, by_text: bool, price_index: bool = True
) -> list[ColumnElement[bool]]:
    """Every condition but the words. With words (``by_text``), categories and claims
    are matched with them (their reserved words are exact); without, by their tables.
    Without ``price_index``, the price range is kept out of its index (see _Sizes)."""
    conditions: list[ColumnElement[bool]] = []
    status = _status_filter(t, shape.status)
    if status is not None:
        conditions.append(status)
    if shape.categories and not by_text:
        categories = bindparam("categories", type_=String(), expanding=True)
        conditions.append(
            exists().where(
                offer_categories.c.offer_id == t.c.id, offer_categories.c.slug.in_(categories)
            )
        )
    for i in range(0 if by_text else shape.claims):
        claim = _value(f"claim{i}", String())
        conditions.append(
            exists().where(offer_claims.c.offer_id == t.c.id, offer_claims.c.claim == claim)
        )
    if shape.coop:
        conditions.append(t.c.actor == _value("coop", String()))
    conditions += _price_range(t, shape, indexed=price_index)
    if shape.near and shape.within:
        if shape.box:
            south, north, west, east = (
                _value(name, Float()) for name in ("south", "north", "west", "east")
            )
            # With words, the latitude index is kept out (as "+ 0"): PostgreSQL would
            # AND a bitmap of every offer in the band with the text index's matches,
            # which the words of the circle's cells have already narrowed as much.
            latitude = t.c.latitude + 0 if by_text else t.c.latitude
            conditions.append(latitude.between(south, north))
            conditions.append(t.c.longitude.between(west, east))
        conditions.append(_distance(t) <= _value("within_km", Float()))
    if shape.sort == "distance":
        conditions.append(t.c.latitude.is_not(None))
    return conditions


def _price_range(t: Any, shape: _Shape, *, indexed: bool = True) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    # "+ 0" keeps PostgreSQL from reading the price's index for the range.
    price = t.c.price_e4 if indexed else t.c.price_e4 + 0
    if shape.currency:
        conditions.append(t.c.currency == _value("currency", String()))
    if shape.min_price:
        conditions.append(price >= _value("min_price", offers.c.price_e4.type))
    if shape.max_price:
        conditions.append(price <= _value("max_price", offers.c.price_e4.type))
    return conditions


def _few(conn: Connection, query: Query) -> tuple[int, int]:
    """How many offers the catalogue holds (about), and how many of them is few for a
    page. A page read newest first takes about (limit + 1) x size / matching offers;
    read from the text index it takes every matching offer: the two cost alike at the
    square root of their product, and "few" is twice that (9,165 offers of a million,
    for pages of 20)."""
    size = _size(conn)
    return size, max(NARROW, int(2 * math.sqrt((query.limit + 1) * size)))


def _size(conn: Connection) -> int:
    """How many offers the catalogue holds, about (its greatest id), read again after
    SIZE_SECONDS: it weighs plans, and a few seconds' offers change none."""
    key = conn.engine.url
    found = _SIZES.get(key)
    if found is None or time.monotonic() - found[1] >= SIZE_SECONDS:
        found = (int(conn.execute(_LAST_ID).scalar() or 0), time.monotonic())
        _SIZES[key] = found
    return found[0]


SIZE_SECONDS = 5.0
_SIZES: dict[Any, tuple[int, float]] = {}


_LAST_ID = select(func.max(offers.c.id))
_CAP = _value("cap", Integer())


def _count(conn: Connection, statement: Select[Any], values: dict[str, Any], cap: int) -> int:
    """How many rows ``statement`` (see _filter_count, _text_count) holds, counting no
    further than ``cap``."""
    return int(conn.execute(statement, values | {"cap": cap}).scalar_one())


@_statement
def _filter_count(shape: _Shape, name: str) -> Select[Any]:
    """The count of the offers of an indexed filter (see _indexed_filters)."""
    ids = select(offers.c.id).where(*_indexed_conditions(shape, name)).limit(_CAP)
    return select(func.count()).select_from(ids.subquery())


@_statement
def _text_count(shape: _Shape) -> Select[Any]:
    """SQLite: the count of the offers its text index finds."""
    source, _ = _by_text(shape.dialect)
    assert isinstance(source, Join)
    return select(func.count()).select_from(select(source.left.c.offer_id).limit(_CAP).subquery())


def _by_text(dialect: str) -> tuple[Any, ColumnElement[bool] | None]:
    """The offers the text index finds: what to select them from, and the condition
    that finds them (on SQLite, the FTS table joined first). Its words are the value
    "match" (SQLite) or "tsquery" (PostgreSQL), see _text_values."""
    if dialect == "sqlite":
        fts = (
            select(
                literal_column(f"rowid & {_ID_MASK}", Integer).label("offer_id"),
                literal_column("rowid", Integer).label("key"),
            )
            .select_from(text_clause("offers_fts"))
            .where(text_clause("offers_fts MATCH :match"))
            .subquery("fts")
        )
        return _DrivingJoin(fts, offers, fts.c.offer_id == offers.c.id), None
    tsquery = func.to_tsquery(literal_column("'simple'"), _value("tsquery", String()))
    # Stored by the database from search_text (migration 0011), GIN-indexed.
    return offers, literal_column("offers.search_vector").op("@@")(tsquery)


def _text_values(dialect: str, text: _Text) -> dict[str, str]:
    """The value of the words asked of the text index (see _by_text)."""
    return {"match": text.fts_match()} if dialect == "sqlite" else {"tsquery": text.tsquery()}


def _source(shape: _Shape, narrowest: str | None) -> tuple[Any, ColumnElement[bool] | None]:
    """What a plan reads offers from: the text index (``narrowest`` None, see _by_text),
    or an indexed filter's index, each offer's words checked (see _by_filter)."""
    if narrowest is None:
        return _by_text(shape.dialect)
    return _by_filter(shape, narrowest)


def _indexed_filters(query: Query) -> tuple[str, ...]:
    """The filters an index of offers can read alone: a price range, a co-op."""
    found: list[str] = []
    if query.currency is not None and (query.min_price, query.max_price) != (None, None):
        found.append("price")
    if query.coop is not None:
        found.append("coop")
    return tuple(found)


def _indexed_conditions(shape: _Shape, name: str) -> list[ColumnElement[bool]]:
    """The conditions of an indexed filter (see _indexed_filters)."""
    if name == "price":
        return _price_range(offers, shape)
    return [offers.c.actor == _value("coop", String())]


def _by_filter(shape: _Shape, name: str) -> tuple[Any, ColumnElement[bool]]:
    """The offers of a filter, by its index, their words checked one by one."""
    conditions = _indexed_conditions(shape, name)
    ids = select(offers.c.id.label("offer_id")).where(*conditions).subquery("filtered")
    return _DrivingJoin(ids, offers, ids.c.offer_id == offers.c.id), _check(offers, shape)


def _surely_broad(conn: Connection, query: Query, share: float) -> bool:
    """PostgreSQL: whether the query's price range surely holds more than ``share`` of
    the catalogue, as the statistics of the words of the prices wholly within it show
    (see text.py): then it is not counted (reading 36,660 entries of its index to find
    out, 3 to 4 ms at 1,000,000 offers)."""
    stats = _WordStats.of(conn) if conn.dialect.name == "postgresql" else None
    if stats is None or query.currency is None:
        return False
    # The word of a power of two holds the prices from the one below to it: those
    # between the range's first and last are wholly within it.
    within = _range_words(query)[1:-1]
    return sum(stats.shares.get(word, 0.0) for word in within) > share


def _range_words(query: Query) -> tuple[str, ...]:
    """The words of the prices of the query's range (see text.py)."""
    assert query.currency is not None
    low = 0 if query.min_price is None else scaled_price(query.min_price)
    high = MAX_SCALED_PRICE if query.max_price is None else scaled_price(query.max_price)
    return tuple(price_words(query.currency, low, high))


def _ceiling(conn: Connection, query: Query) -> tuple[str, ...] | None:
    """PostgreSQL: the words of its text index that hold the offers up to the query's
    highest price (see text.py), when they likely leave out at least half the others
    (the share of each power's word, from the statistics): each offer they leave out
    is a row not read (a category up to 15 EUR, at 1,000,000 offers: 20,031 rows read
    in 38 ms without them, 2,602 in 11 ms with them), for at most a few milliseconds
    more in the text index. None otherwise, or for a currency other than a
    three-letter code in capitals."""
    if query.currency is None or query.max_price is None:
        return None
    stats = _WordStats.of(conn)
    high = scaled_price(query.max_price)
    words = ceiling_words(query.currency, high)
    if stats is None or words is None:
        return None
    below = price_words(query.currency, 0, high)
    if sum(stats.shares.get(word, stats.rare) for word in below) > CEILING_SHARE:
        return None
    return tuple(words)


def _regions(conn: Connection, query: Query, cells: tuple[str, ...]) -> tuple[str, ...] | None:
    """PostgreSQL: the regions of the query's circle (see text.py) when they are fewer
    than its ``cells`` and likely hold at most REGION_GROWTH times their offers (the
    shares of both, from the statistics): PostgreSQL's text index costs by the words
    OR-ed, even of words that hold few offers ("café" near Nantes within 50 km: its 12
    cells, 21 ms; the 2 that hold the town's offers, 9), and each offer more is a row
    more read. None otherwise."""
    box = _box(query)
    stats = _WordStats.of(conn)
    if box is None or stats is None or not cells:
        return None
    regions = region_words(*box)
    if not regions or len(regions) >= len(cells):
        return None
    held = sum(stats.shares.get(word, stats.rare) for word in cells)
    if sum(stats.shares.get(word, stats.rare) for word in regions) > REGION_GROWTH * held:
        return None
    return tuple(regions)


def _estimate(conn: Connection, text: _Text, size: int) -> tuple[int, int]:
    """PostgreSQL's estimate of the offers the words match: counting them costs it as
    much as finding them (its text index yields them unordered). From its statistics
    (see _WordStats) where it has some, else from its planner, which takes the words
    as independent, and the words of categories and places are left out of that (a
    town's name is found in the town's cells). Also, the offers of the words and
    filters alone, categories and places left out. The statistics' shares are of a
    catalogue of ``size`` offers now (they change slowly; its size, fast)."""
    stats = _WordStats.of(conn)
    if stats is not None:
        alone = round(size * stats.share(text, groups=False))
        return round(size * stats.share(text)), alone
    words = _Text(text.words, text.spelled, text.exact, ())
    plan = conn.execute(
        text_clause(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM offers "
            "WHERE search_vector @@ to_tsquery('simple', :tsquery)"
        ).bindparams(tsquery=words.tsquery())
    ).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    rows = int(plan[0]["Plan"]["Plan Rows"])
    return rows, rows


@dataclass(frozen=True, slots=True)
class _WordStats:
    """What PostgreSQL's statistics of the text index say (pg_stats, kept by ANALYZE,
    which autovacuum runs as the catalogue grows): the share of offers holding each of
    its most common words, read once in STATS_SECONDS per database.

    The words of one search mostly go together ("poires pears": the same 50,000 offers
    of a million), where PostgreSQL's own estimate takes them as independent (2,500,
    which sent such a search to read every match): the words are taken to match as
    many offers as the rarest of them (at most that many can), while a claim or a
    co-op, a filter of its own, narrows that share as if independent."""

    shares: dict[str, float]
    rare: float  # a word not among the most common: half the least common's share
    read_at: float

    @classmethod
    def of(cls, conn: Connection) -> _WordStats | None:
        """The statistics (None where PostgreSQL has none yet)."""
        key = conn.engine.url
        found = _WORD_STATS.get(key)
        if found is not None and time.monotonic() - found.read_at < STATS_SECONDS:
            return found
        row = conn.execute(
            text_clause(
                "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
                "WHERE schemaname = current_schema() AND tablename = 'offers' "
                "AND attname = 'search_vector'"
            )
        ).first()
        if row is None or not row[0] or len(row[1] or ()) != len(row[0]) + 2:
            return None
        words, shares = list(row[0]), [float(share) for share in row[1]]
        # The words (in their own order, not by share) have their shares, followed by
        # the least and the most common's. A word not among them is taken as PostgreSQL
        # takes it: half the least common's share, at most its default of 0.5 %.
        rare = min(0.005, shares[len(words)] / 2)
        found = cls(dict(zip(words, shares, strict=False)), rare, time.monotonic())
        _WORD_STATS[key] = found
        return found

    def share(self, text: _Text, *, groups: bool = True) -> float:
        """The share of offers that ``text`` matches: its words' (the rarest's), narrowed
        by each filter's, categories and places among them, as if independent."""
        share = min(
            (self._word(w, spelled) for w, spelled in zip(text.words, text.spelled, strict=True)),
            default=1.0,
        )
        for word in text.exact:
            share *= self.shares.get(word, self.rare)
        for group in text.all_groups(indexed=False) if groups else ():
            share *= min(1.0, sum(self.shares.get(word, self.rare) for word in group))
        return share

    def _word(self, word: str, spelled: tuple[str, ...] | None) -> float:
        if spelled is not None:
            return min(1.0, sum(self.shares.get(w, self.rare) for w in spelled))
        # A prefix of many words: the common ones it begins, at least a rare word's.
        common = sum(share for known, share in self.shares.items() if known.startswith(word))
        return min(1.0, max(common, self.rare))


# Read again after this long: ANALYZE changes them as the catalogue grows.
STATS_SECONDS = 600.0
_WORD_STATS: dict[Any, _WordStats] = {}


@dataclass(frozen=True, slots=True)
class _Sizes:
    """What a search's plan is chosen by, each counted no further than it matters."""

    size: int  # offers in the catalogue, about
    few: int  # see _few
    filtered: int  # offers of the narrowest indexed filter (size when none is asked)
    narrowest: str | None  # that filter's name (see _indexed_filters)
    text: int  # offers the words match: counted on SQLite, estimated on PostgreSQL
    # Whether the words hold the narrowest filter (the co-op's word, or the price
    # range's words): then ``text`` counts it already.
    held: bool = False
    # Whether a price range was counted past "few" x 4 (at least a 27th of a million
    # offers). PostgreSQL would AND its index with the text index's all the same,
    # building a bitmap of every offer in the range (640,000 for "at most 128 EUR", 35
    # ms) to save reading rows the range rejects: such a range is checked on the rows.
    broad_price: bool = False
    # PostgreSQL: the offers of the words and filters alone (categories and places left
    # out), ``text`` otherwise. See _sliced and _worth_sampling.
    words: int = 0

    @classmethod
    def of(
        cls,
        conn: Connection,
        query: Query,
        text: _Text,
        shape: _Shape,
        values: dict[str, Any],
    ) -> tuple[_Sizes, _Text]:
        """The sizes, and the words to ask the text index: on SQLite, with the price
        range's when that range was counted narrow (a broad one costs the index more
        than it saves). ``shape`` and ``values``: the search's (see _values)."""
        size, few = _few(conn, query)
        if size <= SMALL:
            # Nothing to count: whatever the plan, a search reads at most SMALL offers.
            return cls(size, few, size, None, size), text
        filtered, narrowest, held, broad_price = size, None, False, False
        ceiling = _ceiling(conn, query) if conn.dialect.name == "postgresql" else None
        for name in _indexed_filters(query):
            # A price range whose ceiling the text index is asked for is counted only
            # as far as it would be read whole ("few"): a broad one is left to the text
            # index, which narrows by it (counting to 4 x "few", 36,660 entries of the
            # price's index at 1,000,000 offers, took 9 ms).
            cap = few if name == "price" and ceiling is not None else 4 * few
            if name == "price" and _surely_broad(conn, query, cap / size):
                counted = 4 * few  # as a count stopped at its cap
            else:
                counted = _count(conn, _filter_count(shape, name), values, cap)
                counted = 4 * few if counted >= cap else counted
            broad_price |= name == "price" and counted >= 4 * few
            in_words = name == "coop"  # the co-op's word is always asked
            if name == "price" and counted < 4 * few and conn.dialect.name == "sqlite":
                # PostgreSQL asks for the words of the range's ceiling instead (see
                # _ceiling), or ANDs the price's own index with the text index's.
                text, in_words = text.priced(_range_words(query)), True
            if counted < filtered:
                filtered, narrowest, held = counted, name, in_words
        if conn.dialect.name == "sqlite":
            matching = size
            if narrowest is not None and filtered < 4 * few:
                # Only against a filter read whole is the text index's count worth its
                # time (up to a third of a search's): alone, the text index drives.
                matching = _count(conn, _text_count(shape), _text_values("sqlite", text), few)
            alone = matching
        else:
            matching, alone = _estimate(conn, text, size)
            if ceiling is not None:
                text = text.priced(ceiling)
            regions = _regions(conn, query, text.cells)
            if regions is not None:
                text = text.located(regions)
        return cls(size, few, filtered, narrowest, matching, held, broad_price, alone), text

    def price_index(self, dialect: str, text: _Text) -> bool:
        """Whether the text index's plans may read the price's index (see broad_price):
        not on PostgreSQL when its text index is asked for the range's words."""
        return dialect == "sqlite" or not (self.broad_price or text.prices)

    def walk_bound(self, sort: str) -> int:
        """The offers a walk reads at most: twice "few" newest first (each read where
        it lies), eight times "few" by storage (read in the order they lie, in a
        quarter of the time each)."""
        return self.few * (2 if sort == "recent" else 8)

    def none_match(self, dialect: str) -> bool:
        """Whether a count found that nothing can match (an estimate never says so)."""
        return (self.narrowest is not None and self.filtered == 0) or (
            dialect == "sqlite" and self.text == 0
        )

    def plan(self, sort: str, needed: int, dialect: str) -> str:
        """The cheapest way to ``needed`` matching offers, in offers read: "filter" (the
        narrowest indexed filter read whole), "walk" (offers read in the page's order,
        which pays only when it likely ends within its bound), or "text" (the text
        index drives). The words and the filter are taken as independent; a count that
        stopped at its cap is a lower bound (a filter counted so is left out)."""
        if self.size <= SMALL:
            return "text"
        costs = self.costs(sort, needed, dialect)
        return min(costs, key=lambda plan: costs[plan])

    def costs(self, sort: str, needed: int, dialect: str) -> dict[str, float]:
        """What each plan that can run would cost, in offers read (see :meth:`plan`)."""
        size = max(self.size, 1)
        counted = self._counted()
        filtered = self._independent()
        matching = max(self.text, 1)
        costs: dict[str, float] = {}
        if counted:
            costs["filter"] = filtered
        if dialect == "sqlite":
            # Sorted by recency or relevance, matches are read newest first (to the
            # hour) until enough pass the filters; by price or distance, all of them.
            costs["text"] = matching
            if sort in ("recent", "relevance"):
                costs["text"] = min(matching, needed * size / filtered)
        else:
            # PostgreSQL ANDs the text index with the filter's before it reads rows; it
            # reads an index entry in about an eighth of a row's time.
            costs["text"] = matching / 8 + matching * filtered / size
        if sort in ("recent", "relevance") and dialect != "sqlite":
            walk = self.walk_expected(needed)
            if walk <= self.walk_bound(sort):
                costs["walk"] = walk
        return costs

    def walk_expected(self, needed: int) -> float:
        """The offers a walk reads to find ``needed`` matches, the words and the
        filter taken as independent."""
        size = max(self.size, 1)
        return needed * size / max(self.text, 1) * size / self._independent()

    def share(self) -> float:
        """The share of the catalogue the filters let through, as far as counted."""
        return self._independent() / max(self.size, 1)

    def alone(self) -> float:
        """The offers the words and the counted filters likely match, categories and
        places left out (see ``words``)."""
        return self.words * self.share()

    def _counted(self) -> bool:
        """Whether the narrowest filter was counted whole (not stopped at its cap)."""
        return self.narrowest is not None and self.filtered < 4 * self.few

    def _independent(self) -> int:
        """The offers of the filter that the words are taken as independent of: the
        catalogue when none was counted, or when the words' count holds it already."""
        if not self._counted() or self.held:
            return max(self.size, 1)
        return max(self.filtered, 1)


@dataclass(frozen=True, slots=True)
class _Asked:
    """A search under way: its connection and query, the shape of its statements and
    the values they are executed with."""

    conn: Connection
    query: Query
    shape: _Shape
    values: dict[str, Any]

    @property
    def dialect(self) -> str:
        return self.shape.dialect

    def rows(self, statement: Select[Any], **more: Any) -> list[Any]:
        """The rows of ``statement``, with the search's values and ``more``."""
        return list(self.conn.execute(statement, self.values | more).all())


def search(conn: Connection, query: Query, *, now: datetime) -> Page:
    """One page of offers, by the plans described above."""
    dialect = conn.dialect.name
    if not query.words:
        shape = _Shape.of(dialect, query, None)
        asked = _Asked(conn, query, shape, _values(query, now, None))
        return _page(asked.rows(_plain_page(shape)), query, now)
    text = _Text.of(conn, query)
    if text is None:
        return Page(hits=[], next_cursor=None)
    shape = _Shape.of(dialect, query, text)
    values = _values(query, now, text)
    sizes, text = _Sizes.of(conn, query, text, shape, values)
    if sizes.none_match(dialect):
        return Page(hits=[], next_cursor=None)
    asked = _Asked(conn, query, shape, values | _text_values(dialect, text))
    needed = CANDIDATES if query.sort == "relevance" else query.limit + 1
    plan = sizes.plan(query.sort, needed, dialect)
    # The narrowest indexed filter when it drives, else None: the text index.
    narrowest = sizes.narrowest if plan == "filter" else None
    if query.sort == "relevance":
        return _page(_ranked(asked, text, narrowest, plan, sizes), query, now)
    if (
        plan == "walk"
        and query.sort == "recent"
        and _walk_borne_out(_share_of_last_stored(asked), needed, sizes.walk_bound("recent"))
    ):
        rows = _walk(asked, sizes)
        if rows is not None:
            return _page(rows, query, now)
    sliced = narrowest is None and _sliced(conn, sizes)
    # The index of the offers published last likely holds the page's rows (the words
    # and filters alone, categories and places left out, likely match as many of its
    # offers as of the catalogue's): it is asked first.
    if (
        query.sort == "recent"
        and narrowest is None
        and _estimated(conn, sizes)
        and sizes.alone() * PUBLISHED >= (query.limit + 1) * sizes.size
    ):
        rows = _published_last(asked, text, sizes)
        if rows is not None and len(rows) > query.limit:
            return _page(rows, query, now)
        # Its share of matches, of PUBLISHED offers at least, tells how many the
        # catalogue holds better than the estimate: those of a place or category that
        # the words go with, taken as independent, look many. Few are read at once
        # (periods of publication asked one after another cost the text index each
        # time: 40 ms for 185 stays near Strasbourg, where one statement took 11).
        if rows is not None and len(rows) * sizes.size < sizes.few * PUBLISHED:
            sliced = False
    price_index = sizes.price_index(dialect, text)
    if sliced and query.sort == "recent":
        newest = query.cursor[0] if query.cursor is not None else None
        return _page(_newest_by_period(asked, text, sizes, price_index, newest), query, now)
    if query.sort == "recent" and dialect == "sqlite" and narrowest is None:
        return _page(_newest_by_hour(asked, price_index), query, now)
    return _page(asked.rows(_matching_page(shape, narrowest, price_index)), query, now)


@_statement
def _plain_page(shape: _Shape) -> Select[Any]:
    """A page of a search without words."""
    statement = select(*_columns(offers, shape)).where(*_filters(offers, shape, by_text=False))
    return _paged(statement, offers, shape)


@_statement
def _matching_page(shape: _Shape, narrowest: str | None, price_index: bool) -> Select[Any]:
    """A page of the offers matching the words and filters, read from ``narrowest``'s
    index or the text index (see _source)."""
    source, found = _source(shape, narrowest)
    statement = (
        select(*_columns(offers, shape))
        .select_from(source)
        .where(*_filters(offers, shape, by_text=True, price_index=price_index))
    )
    if found is not None:
        statement = statement.where(found)
    return _paged(statement, offers, shape)


def _paged(statement: Select[Any], t: Any, shape: _Shape) -> Select[Any]:
    """``statement`` (rows of ``t``) sorted by recency, price or distance, its rows after
    the cursor, a page's worth and one more."""
    distance = _distance(t) if shape.near else None
    order, after = _order(shape, t, distance)
    if after is not None:
        statement = statement.where(after)
    return statement.order_by(*order).limit(_LIMIT)


def _estimated(conn: Connection, sizes: _Sizes) -> bool:
    """Whether the search's matches were estimated, not counted: PostgreSQL, in a
    catalogue larger than SMALL."""
    return conn.dialect.name == "postgresql" and sizes.size > SMALL


def _sliced(conn: Connection, sizes: _Sizes) -> bool:
    """Whether PostgreSQL's text index is asked period by period (see PERIOD_SECONDS):
    in a large catalogue, when the words and filters alone likely match more than
    "few" offers (fewer are read at once at less cost). Categories and places are left
    out of that: taken as independent of the words, they would make it short of the
    matches ("poires pears" in the pears category)."""
    return _estimated(conn, sizes) and sizes.alone() > sizes.few


def _newest_by_period(
    asked: _Asked, text: _Text, sizes: _Sizes, price_index: bool, newest: datetime | None
) -> list[Any]:
    """The newest rows of a page (every condition but the words, after the cursor),
    the words asked of PostgreSQL's text index with the newest periods of publication
    first: as many as likely hold twice the rows wanted, then, for what is missing, as
    many older ones as the periods read yielded it in, and half as many more (all the
    rest when they yielded nothing). Periods follow one another in time: the rows of
    newer ones are newer than any of older ones, so the page is exact. ``newest``: the
    moment the page starts from (a cursor's), else the newest offer's."""
    bounds = asked.conn.execute(_PUBLISHED_BOUNDS)
    oldest, latest = bounds.one()
    if oldest is None:
        return []
    wanted = asked.query.limit + 1
    low, high = _period(oldest), _period(newest if newest is not None else latest)
    count = math.ceil(2 * wanted * (high - low + 1) / max(sizes.text * sizes.share(), 1.0))
    rows: list[Any] = []
    start = high
    while start >= low and len(rows) < wanted:
        if start < high:
            read = high - start
            missing = wanted - len(rows)
            count = math.ceil(1.5 * missing * read / len(rows)) if rows else start - low + 1
        end = max(low, start - count + 1) if count <= MAX_PERIODS else low
        words = text.tsquery()
        if end > low:
            periods = " | ".join(f"zzt{n}" for n in range(start, end - 1, -1))
            words = f"{words} & ({periods})"
        # else the rest of the catalogue: the words alone.
        later = _start_of(start + 1)
        statement = _by_period(asked.shape, price_index, later is not None)
        # An offer whose text holds the word of a newer period than its own is kept
        # for its own (it comes after every offer of the periods asked).
        found = asked.rows(statement, tsquery=words, later=later, wanted=wanted - len(rows))
        rows += [row for row in found if _period(row.published) >= end]
        start = end - 1
    return rows


_PUBLISHED_BOUNDS = select(func.min(offers.c.published), func.max(offers.c.published))


@_statement
def _by_period(shape: _Shape, price_index: bool, later: bool) -> Select[Any]:
    """PostgreSQL: the newest rows matching the words (with the periods asked, the value
    "tsquery") and filters, after the cursor, published before the value "later" if
    ``later``, at most the value "wanted" of them."""
    _, found = _by_text(shape.dialect)
    assert found is not None
    statement = (
        select(*_columns(offers, shape))
        .where(*_filters(offers, shape, by_text=True, price_index=price_index))
        .where(found)
    )
    after = _order(shape, offers, None)[1]
    if after is not None:
        statement = statement.where(after)
    if later:
        statement = statement.where(offers.c.published < _value("later", offers.c.published.type))
    statement = statement.order_by(offers.c.published.desc(), offers.c.id.desc())
    return statement.limit(_value("wanted", Integer()))


def _period(moment: datetime) -> int:
    """The period of publication of ``moment``, as migration 0024 numbers it."""
    return max(0, math.floor(moment.timestamp() / PERIOD_SECONDS))


def _start_of(period: int) -> datetime | None:
    """The first moment of ``period`` (None past the last that Python's dates hold)."""
    try:
        return datetime.fromtimestamp(period * PERIOD_SECONDS, UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _newest_by_hour(asked: _Asked, price_index: bool) -> list[Any]:
    """SQLite: a page's rows, newest first, by its text index, which yields matches
    newest first to the hour (see _HOUR_SHIFT): read until there are enough and the
    hour of the last of them is read through (an offer of an earlier hour is older
    than each of them), then sorted exactly."""
    wanted = asked.query.limit + 1
    bound = {}
    if asked.query.cursor is not None:
        bound["hour_bound"] = (_hour(asked.query.cursor[0]) + 1) << _HOUR_SHIFT
    rows: list[Any] = []
    last_hour = None
    result = asked.conn.execute(_by_hour(asked.shape, price_index), asked.values | bound)
    for row in result:
        hour = row.key >> _HOUR_SHIFT
        if last_hour is not None and hour < last_hour:
            break
        rows.append(row)
        if last_hour is None and len(rows) == wanted:
            last_hour = hour
    result.close()
    rows.sort(key=lambda row: (row.published, row.id), reverse=True)
    return rows[:wanted]


@_statement
def _by_hour(shape: _Shape, price_index: bool) -> Select[Any]:
    """SQLite: the offers matching the words and filters, after the cursor (and before
    the value "hour_bound" in its text index's keys), in the order of those keys."""
    source, _ = _by_text(shape.dialect)
    assert isinstance(source, Join)
    key = source.left.c.key
    statement = (
        select(*_columns(offers, shape))
        .select_from(source)
        .where(*_filters(offers, shape, by_text=True, price_index=price_index))
    )
    after = _order(shape, offers, None)[1]
    if after is not None:
        statement = statement.where(after, key < _value("hour_bound", Integer()))
    return statement.add_columns(key.label("key")).order_by(key.desc())


def _walk(asked: _Asked, sizes: _Sizes) -> list[Any] | None:
    """PostgreSQL, newest first: the page's rows found by a walk (see _walked); None
    when the walk ends before it has them."""
    rows = asked.rows(_walked(asked.shape, newest=True), bound=sizes.walk_bound("recent"))
    return rows if len(rows) > asked.query.limit else None


@_statement
def _walked(shape: _Shape, *, newest: bool) -> Select[Any]:
    """PostgreSQL: offers read one by one, each checked, in the order of the page
    (``newest``: published, newest first, after the cursor; its rows) or of storage
    (the last stored first; the CANDIDATES, their columns _READ), at most the value
    "bound" of them, until the page has its rows. In one statement: PostgreSQL's plan
    costs weigh index entries and rows read in storage order apart, which a walk's
    rows are not, and each statement costs it a plan (measured slower in steps).
    SQLite never walks: its text index yields matches newest first, and reads fewer
    offers."""
    keys = [offers.c[key] for key in (("published", "id") if newest else ("id",))]
    walked = select(*(offers.c[name] for name in _READ)).order_by(*(key.desc() for key in keys))
    after = _order(shape, offers, None)[1] if newest else None
    if after is not None:
        walked = walked.where(after)
    t = walked.limit(_value("bound", Integer())).subquery("walked")
    return (
        select(*(_columns(t, shape) if newest else [t.c[name] for name in _READ]))
        .where(*_filters(t, shape, by_text=True), _check(t, shape))
        .order_by(*(t.c[key.name].desc() for key in keys))
        .limit(_LIMIT if newest else _CANDIDATES)
    )


_CANDIDATES = _value("candidates", Integer())


def _ranked(
    asked: _Asked, text: _Text, narrowest: str | None, plan: str, sizes: _Sizes
) -> list[Any]:
    """A search by relevance: the CANDIDATES matching offers published last (SQLite,
    whose text index yields them newest first to the hour, then the last stored) or
    stored last (PostgreSQL, which stores them in that order), ranked. On PostgreSQL,
    they are found among the last stored first: by the recent indexes (see
    recent_store.py), the smallest first, then a larger one only if the share of
    offers matching in the one read says it likely holds them; or by walking the
    offers from the last stored when the plan is to; by the whole text index only if
    those end too soon."""
    conn, shape = asked.conn, asked.shape
    share = None  # of the last stored that match, once counted
    tiers = _recent(conn) if plan != "filter" and _estimated(conn, sizes) else ()
    price_index = sizes.price_index(asked.dialect, text)
    # The largest recent index may hold them (the words and filters alone, categories
    # and places left out, likely match as many of its offers as of the catalogue's).
    # The smallest is read first, the last stored not counted before: where it holds
    # too few, its share of many more offers than a sample's tells the larger ones'
    # better (a sample's few matches sent searches to the largest index in vain, or
    # past one that held them).
    if tiers and sizes.alone() * (sizes.size - tiers[-1][1]) >= CANDIDATES * sizes.size:
        for tier, after in tiers:
            held = sizes.size - after
            if share is None or share * held >= CANDIDATES:
                rows, matched = _rank_all(asked, _last_stored_past(shape, price_index, tier, after))
                if matched == CANDIDATES:
                    return rows
                share = matched / max(held, 1)
    if plan == "text" and narrowest is None and _worth_sampling(conn, sizes):
        if share is None:
            share = _share_of_last_stored(asked)
        if _walk_borne_out(share, CANDIDATES, sizes.walk_bound("relevance")):
            plan = "walk"
    elif (
        plan == "walk"
        and share is not None
        and not _walk_borne_out(share, CANDIDATES, sizes.walk_bound("relevance"))
    ):
        # Planned by the estimate, but the last stored or a recent index showed how
        # many match: a walk that would end short is not begun.
        plan = "text"
    if plan == "walk":
        bound = sizes.walk_bound("relevance")
        rows, matched = _rank_all(asked, _walk_ranked(shape), bound=bound)
        if matched == CANDIDATES:
            return rows
    return _rank_all(asked, _matching_ranked(shape, narrowest, price_index))[0]


@_statement
def _matching_ranked(shape: _Shape, narrowest: str | None, price_index: bool) -> Select[Any]:
    """The CANDIDATES offers matching the words and filters published last (SQLite, to
    the hour) or stored last (PostgreSQL), from ``narrowest``'s index or the text index
    (see _source), ranked (see _ranking)."""
    source, found = _source(shape, narrowest)
    key = _hour_key(source)
    if key is None:  # PostgreSQL's order, or the key read from each offer (SQLite)
        key = offers.c.id if shape.dialect != "sqlite" else _HOUR_KEY
    candidates = (
        select(*(offers.c[name] for name in _READ))
        .select_from(source)
        .where(
            *_filters(offers, shape, by_text=True, price_index=price_index),
            *([] if found is None else [found]),
        )
        .order_by(key.desc())
        .limit(_CANDIDATES)
    )
    return _ranking(candidates, shape)


def _hour_key(source: Any) -> ColumnElement[int] | None:
    """The key of SQLite's text index when it drives ``source``, else None."""
    if isinstance(source, _DrivingJoin) and "key" in source.left.c:
        key: ColumnElement[int] = source.left.c.key
        return key
    return None


def _ranking(candidates: Select[Any], shape: _Shape) -> Select[Any]:
    """The page of the ``candidates`` (rows of the columns _READ, at most CANDIDATES)
    by relevance, and how many they were, in each row (0 rows for a page past them
    all): in one statement, ranked as read (not read again by id)."""
    found = candidates.cte("candidates")
    matched = select(func.count()).select_from(found).scalar_subquery().label("matched")
    statement = select(*_columns(found, shape), matched).order_by(*_relevance(found, shape))
    statement = statement.limit(_LIMIT)
    return statement.offset(_value("offset", Integer())) if shape.cursor else statement


def _rank_all(asked: _Asked, statement: Select[Any], **more: Any) -> tuple[list[Any], int]:
    """The rows of a ranked ``statement`` (see _ranking), and how many candidates it
    ranked, which the caller reads only if they were CANDIDATES."""
    rows = asked.rows(statement, **more)
    return rows, rows[0].matched if rows else 0


def _recent(conn: Connection) -> tuple[tuple[int, int], ...]:
    """PostgreSQL's recent indexes: the tier of each and the id after which it holds
    every offer, the smallest index's first (see recent_store.py)."""
    return _recent_indexes(conn)[0]


def _published_from(conn: Connection) -> int | None:
    """The moment (in seconds since 1970) from which PostgreSQL's index of the offers
    published last holds every offer, if there is one (see recent_store.py)."""
    return _recent_indexes(conn)[1]


def _recent_indexes(conn: Connection) -> _Indexes:
    """Both, looked up once in RECENT_SECONDS per database."""
    key = conn.engine.url
    found = _RECENT.get(key)
    if found is None or time.monotonic() - found[1] >= RECENT_SECONDS:
        start = published_from(conn)
        indexes = (recent_tiers(conn), None if start is None else int(start.timestamp()))
        found = (indexes, time.monotonic())
        _RECENT[key] = found
    return found[0]


# Looked up again after this long: the catalogue's round makes the index again further
# on as offers arrive (a search meanwhile reads the rest of the catalogue for more).
RECENT_SECONDS = 60.0
# The recent indexes' tiers and ids (see _recent), and the moment of the index of the
# offers published last (see _published_from).
_Indexes = tuple[tuple[tuple[int, int], ...], int | None]
_RECENT: dict[Any, tuple[_Indexes, float]] = {}


def _published_last(asked: _Asked, text: _Text, sizes: _Sizes) -> list[Any] | None:
    """PostgreSQL, newest first: the page's rows from the index of the offers published
    last, fewer when it holds too few of them for the page, None when there is none or
    the page starts before its moment. It holds every offer published from its moment
    on: any match it lacks is older than each row of a page it fills."""
    start = _published_from(asked.conn)
    cursor = asked.query.cursor
    if start is None or (cursor is not None and cursor[0].timestamp() < start):
        return None  # none, or the page starts before its moment
    price_index = sizes.price_index(asked.dialect, text)
    return asked.rows(_published_page(asked.shape, price_index, start))


@_statement
def _published_page(shape: _Shape, price_index: bool, start: int) -> Select[Any]:
    """PostgreSQL: a page of the offers matching the words and filters published from
    ``start`` (in seconds since 1970) on, by the index of the offers published last."""
    # Written into the statement, so that PostgreSQL sees it is the index's.
    since = offers.c.published >= literal_column(published_literal(start))
    statement = _in_partial_index(shape, price_index, _columns(offers, shape), since)
    return _paged(statement, offers, shape)


@_statement
def _last_stored_past(shape: _Shape, price_index: bool, tier: int, after: int) -> Select[Any]:
    """The CANDIDATES last stored matching offers of ids past ``after``, as PostgreSQL's
    recent index of ``tier`` past it holds them, ranked (see _ranking)."""
    # Written into the statement as in the index, so that PostgreSQL sees it is the
    # recent index's (the statement reads the offers alone: "id" is theirs).
    past = literal_column(recent_condition(tier, after), Boolean)
    columns = [offers.c[name] for name in _READ]
    statement = _in_partial_index(shape, price_index, columns, past)
    return _ranking(statement.order_by(offers.c.id.desc()).limit(_CANDIDATES), shape)


@_statement
def _walk_ranked(shape: _Shape) -> Select[Any]:
    """The CANDIDATES offers a walk finds from the last stored (see _walked), ranked."""
    return _ranking(_walked(shape, newest=False), shape)


def _in_partial_index(
    shape: _Shape, price_index: bool, columns: list[Any], condition: ColumnElement[bool]
) -> Select[Any]:
    """PostgreSQL: ``columns`` of the offers matching the words and filters that meet
    ``condition``, a partial text index's own (see recent_store.py)."""
    _, found = _by_text(shape.dialect)
    assert found is not None
    return select(*columns).where(
        *_filters(offers, shape, by_text=True, price_index=price_index), found, condition
    )


def _worth_sampling(conn: Connection, sizes: _Sizes) -> bool:
    """PostgreSQL, by relevance: whether the estimate of the matches hangs on taking the
    words and the categories or places asked as independent, enough to tell a walk
    from the text index. They often go together: a town's name and the cells around
    it are the same offers (83,384 and 85,921 of a million, 83,384 together, where
    taken as independent they make 7,000), and read from the text index, every match
    costs a row (125 ms for these)."""
    # The text index would read more matches than half the longest walk: at 100,000
    # offers, fewer are read faster than the last stored are counted.
    bound = max(sizes.walk_bound("relevance") / 2, 4 * sizes.text * sizes.share())
    return _estimated(conn, sizes) and sizes.alone() > bound


def _walk_borne_out(share: float, needed: int, bound: int) -> bool:
    """Whether, ``share`` of the last offers stored matching, a walk likely finds
    ``needed`` within ``bound`` offers. The estimate a plan is chosen by takes the words
    and filters as independent, and a price range counted past its cap as holding every
    offer: sorted by recency, a price under a tenth of the catalogue's sent walks to
    read their whole bound in vain before the text index drove (40 to 60 ms at
    1,000,000 offers). The last stored are those a walk reads first (newest first,
    mostly)."""
    return share > 0 and WALK_MARGIN * needed / share <= bound


def _share_of_last_stored(asked: _Asked) -> float:
    """The share of the last SAMPLED offers stored that match the words and filters:
    those a walk reads first (some 2 ms)."""
    counted = asked.conn.execute(_sampled(asked.shape), asked.values | {"sampled": SAMPLED})
    read, matching = counted.one()
    return int(matching) / max(int(read), 1)


@_statement
def _sampled(shape: _Shape) -> Select[int, int]:
    """How many of the last stored (the value "sampled" of them) were read, and how
    many match the words and filters."""
    last = select(*(offers.c[name] for name in _READ)).order_by(offers.c.id.desc())
    t = last.limit(_value("sampled", Integer())).subquery("sampled")
    match = and_(*_filters(t, shape, by_text=True), _check(t, shape))
    return select(func.count(), func.count().filter(match)).select_from(t)


def _page(rows: list[Any], query: Query, now: datetime) -> Page:
    more = len(rows) > query.limit
    rows = rows[: query.limit]
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
    return Page(hits=[_hit(row, now) for row in rows], next_cursor=next_cursor)


def _order(
    shape: _Shape, t: Any, distance: ColumnElement[float] | None
) -> tuple[list[Any], ColumnElement[bool] | None]:
    """The sort (by recency, price or distance) and the condition of rows after the
    cursor (its values "after_moment", "after_price" or "after_km", and "after_id")."""
    cursor = shape.cursor
    last_id = _value("after_id", Integer())
    if shape.sort == "recent" or shape.sort == "relevance":
        after = None
        if cursor and shape.sort == "recent":
            moment = _value("after_moment", offers.c.published.type)
            after = or_(
                t.c.published < moment,
                and_(t.c.published == moment, t.c.id < last_id),
            )
        return [t.c.published.desc(), t.c.id.desc()], after
    if shape.sort == "price":
        after = None
        if cursor:
            price = _value("after_price", offers.c.price_e4.type)
            after = or_(t.c.price_e4 > price, and_(t.c.price_e4 == price, t.c.id > last_id))
        return [t.c.price_e4.asc(), t.c.id.asc()], after
    assert distance is not None
    after = None
    if cursor:
        km = _value("after_km", Float())
        after = or_(distance > km, and_(distance == km, t.c.id > last_id))
    return [distance.asc(), t.c.id.asc()], after


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
