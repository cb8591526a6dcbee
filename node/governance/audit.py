"""``coopnode audit``: recompute a closed proposal's result from what its host publishes.

A co-op's members should not have to trust the host's count. Once a proposal is closed,
its host publishes everything the count used: the settings (the ``Question``), the
electorate as of the opening (with a digest in ``rosterSnapshot``), and every ballot
with the Notes the voter sent, signed by the voter's own node where it is a coopnode
(FEP-8b32 ``eddsa-jcs-2022`` proofs). Anyone can then:

1. read the settings into the same :class:`~node.governance.rules.tally.Proposal` the host used;
2. walk the electorate and ballots collections, refusing pages that are not the
   collection's or that live on another host (a host cannot make another server answer
   for its ballots, and a page from elsewhere could be anyone's);
3. check each ballot against its Notes, and each Note's proof against the key that the
   voter's own actor document publishes: a proof made with another actor's key proves
   nothing about the voter (key confusion), and a proof that fails means the ballot was
   changed after the voter signed it;
4. recount with :func:`~node.governance.rules.tally.tally` — the very function the host ran —
   over the ballots that verified and those without a proof (which the host vouches
   for: Mastodon voters sign nothing), and compare every published figure and every
   ballot's published status with the recount.

A shared proposal counted by subtotals publishes no ballots: its audit, in
:mod:`node.governance.audit_subtotals`, verifies each co-op's signed subtotal instead.

Nothing here trusts the host's documents: every field is checked before use and a bad
one is a clear :class:`AuditError` naming it, never a traceback. The walk is bounded
(:data:`MAX_PAGES`, :data:`MAX_ITEMS`) so that an endless collection cannot run the
audit forever, and actor documents are fetched at most :data:`ACTOR_CONCURRENCY` at a
time, once per voter.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation import keys, mediatypes, proofs
from federation.bodies import read_capped
from federation.errors import FederationError, FetchError, InvalidDocument, MalformedInput
from federation.fetch import ACCEPT_AS2, MAX_DOCUMENT_BYTES, MAX_JSON_DEPTH, check_url, fetch_json
from federation.jsonlimits import parse_object
from federation.netguard import ForbiddenAddress, GuardedBackend
from node.errors import Invalid
from node.governance.rules.digest import roster_digest
from node.governance.rules.tally import (
    Ballot,
    Consent,
    Majority,
    Option,
    Outcome,
    Proposal,
    Qualified,
    Reason,
    Result,
    Role,
    Rule,
    tally,
)

if TYPE_CHECKING:
    from node.governance.audit_subtotals import Share, SubtotalCheck

MAX_PAGES = 2_000
MAX_ITEMS = 2_000_000
ACTOR_CONCURRENCY = 32
MAX_NOTES_PER_BALLOT = 64
MAX_PAGE_BYTES = 32 * 1024 * 1024
"""A page of 1,000 ballots, each with its signed Notes, is about a megabyte: more than
:data:`federation.fetch.MAX_DOCUMENT_BYTES` allows any document. Collection pages are
read with this cap instead (a multiple-choice ballot carries one Note per option)."""

STATUSES = ("counted", "replaced", "set aside", "refused")
_FRACTION = re.compile(r"(0|[1-9][0-9]{0,17})(/[1-9][0-9]{0,17})?", re.ASCII)


class AuditError(Exception):
    """The proposal could not be reached or read: nothing can be said about its result."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


# --- the report ------------------------------------------------------------------------


class Judged:
    """What a checked ballot or subtotal's ``proof`` state means: ``failed`` (TAMPERED)
    and ``inconsistent`` ones are left out of the recount."""

    proof: str

    @property
    def excluded(self) -> bool:
        return self.proof in ("failed", "inconsistent")

    @property
    def label(self) -> str:
        return "TAMPERED" if self.proof == "failed" else self.proof.upper()


@dataclass
class BallotCheck(Judged):
    """One published ballot and what the audit found about it.

    ``proof`` is ``verified`` (every Note carries a proof that verifies with a key of the
    voter's), ``unverifiable`` (no proof, or the voter's key could not be fetched: the
    host vouches for it), ``failed`` (a proof that does not verify, or made with a key
    that is not the voter's: TAMPERED) or ``inconsistent`` (the Notes do not say what the
    ballot says). Failed and inconsistent ballots are left out of the recount.
    """

    position: int
    voter: str
    college: str | None
    choices: tuple[str, ...]
    cast_at: datetime
    activity: str
    status: str
    reason: str | None
    votes: list[Any]
    proof: str = "unverifiable"
    problems: list[str] = field(default_factory=list)
    recount_status: str | None = None

    @property
    def ballot(self) -> Ballot:
        return Ballot(
            voter=self.voter,
            choices=self.choices,
            cast_at=self.cast_at,
            activity_id=self.activity,
            college=self.college,
        )


@dataclass
class Published:
    """The result as the host published it, read field by field (``None``: not given)."""

    result: str
    eligible: int
    quorum_needed: int
    turnout: int
    counts: dict[str, int]
    passed: bool | None = None
    quorum_turnout: int | None = None
    support: Fraction | None = None
    weighted_support: Fraction | None = None
    weighted_shares: dict[str, Fraction] | None = None
    colleges: dict[str, tuple[Fraction | None, int, dict[str, int]]] | None = None
    reason: str | None = None
    has_support: bool = False
    has_weighted_support: bool = False
    replies: dict[str, int] = field(default_factory=dict)
    """Each option's ``replies.totalItems``, where given (Mastodon's count field)."""


@dataclass
class AuditReport:
    url: str
    name: str
    proposal: Proposal
    published: Published
    recount: Result
    electorate: dict[str, str | None]
    ballots: list[BallotCheck]
    discrepancies: list[str]
    subtotals: list[SubtotalCheck] = field(default_factory=list)
    """In subtotal mode: each co-op's published subtotal (``ballots`` is then empty)."""
    shares: dict[str, Share] = field(default_factory=dict)
    """In subtotal mode: each co-op's participation, as published."""

    @property
    def verified(self) -> int:
        return sum(1 for b in self.ballots if b.proof == "verified")

    @property
    def unverifiable(self) -> int:
        return sum(1 for b in self.ballots if b.proof == "unverifiable")

    @property
    def failed(self) -> int:
        return sum(1 for b in self.ballots if b.proof == "failed")

    @property
    def inconsistent(self) -> int:
        return sum(1 for b in self.ballots if b.proof == "inconsistent")

    @property
    def ok(self) -> bool:
        return (
            not self.discrepancies
            and not self.failed
            and not self.inconsistent
            and not any(s.excluded for s in self.subtotals)
        )

    @property
    def verdict(self) -> str:
        return "VERIFIED" if self.ok else "DOES NOT VERIFY"


# --- fetching ------------------------------------------------------------------------

FetchDocument = Callable[[str], Awaitable[dict[str, Any]]]


def url_origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


class _ActorFetcher:
    """Actor documents, fetched as :func:`federation.fetch.fetch_json` fetches them.

    An audit fetches one actor document per voter: thousands of small GETs, where the
    httpx client's own cost per request (about 2 ms of CPU) would be most of the audit.
    When ``http`` is a client built on the address guard, the GETs go through aiohttp
    with the same guard (its resolver and a check on every socket, as
    :class:`federation.poster.AiohttpPoster` does for deliveries), with the same rules
    as ``fetch_json``: http(s) URLs only, one deadline, ActivityStreams content type,
    capped and depth-limited body, and the ``id`` the URL asked for. Anything unusual —
    a redirect, another ``id`` — is handed to ``fetch_json`` itself, which knows how to
    follow it. Any other client is used as it is.
    """

    def __init__(self, http: httpx.AsyncClient, *, allow_http: bool) -> None:
        self._http = http
        self._allow_http = allow_http
        self._guard = _guard_of(http)
        self._session: Any = None
        self._origins: dict[tuple[str, str], str | None] = {}

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[_ActorFetcher]:
        if self._guard is None:
            yield self
            return
        import aiohttp

        from federation.poster import GuardedResolver

        guard = self._guard
        ssl_context = _ssl_of(self._http)

        def guarded_socket(addr_info: Any) -> socket.socket:
            family, type_, proto, _, sockaddr = addr_info
            address = ipaddress.ip_address(sockaddr[0])
            reason = guard.refusal(address)
            if reason is not None:
                raise OSError(f"{ForbiddenAddress(str(address), address, reason)}")
            return socket.socket(family, type_, proto)

        connector = aiohttp.TCPConnector(
            limit=ACTOR_CONCURRENCY,
            ssl=ssl_context if ssl_context is not None else True,
            resolver=GuardedResolver(guard),
            socket_factory=guarded_socket,
        )
        async with aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self._http.headers.get("User-Agent", "coopnode audit")},
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        ) as session:
            self._session = session
            try:
                yield self
            finally:
                self._session = None

    async def __call__(self, url: str) -> dict[str, Any]:
        if self._session is None:
            return await fetch_json(self._http, url, allow_http=self._allow_http)
        self._check(url)
        import aiohttp

        try:
            async with asyncio.timeout(10.0):
                async with self._session.get(
                    url, headers={"Accept": ACCEPT_AS2}, allow_redirects=False
                ) as response:
                    if 300 <= response.status < 400:
                        document = None
                    else:
                        document = await self._read(response, url)
        except TimeoutError:
            raise FetchError(f"{url}: no complete answer within 10 s") from None
        except (aiohttp.ClientError, ValueError) as exc:  # yarl refuses some URLs
            raise FetchError(f"{url}: {exc or type(exc).__name__}") from exc
        if document is None or document.get("id") != url:
            return await fetch_json(self._http, url, allow_http=self._allow_http)
        return document

    def _check(self, url: str) -> None:
        """``check_url``'s rules (http(s), a host, no credentials, a valid literal
        address), judged once per scheme and host: parsing every actor's URL with httpx
        costs more than fetching it. The guard still checks every address connected to."""
        try:
            parts = urlsplit(url)
            origin = (parts.scheme, parts.netloc)
            refusal = self._origins.get(origin, "")
            if refusal == "":
                refusal = None
                try:
                    check_url(f"{parts.scheme}://{parts.netloc}/", allow_http=self._allow_http)
                except FetchError as exc:
                    refusal = exc.reason
                if refusal is None:
                    refusal = _literal_refusal(parts.hostname or "", self._guard)
                self._origins[origin] = refusal
        except ValueError as exc:
            raise FetchError(f"{url!r} is not a valid URL: {exc}") from None
        if refusal is not None:
            raise FetchError(f"{url}: {refusal}")

    @staticmethod
    async def _read(response: Any, url: str) -> dict[str, Any]:
        if response.status != 200:
            raise FetchError(f"{url} answered {response.status}")
        content_type = response.headers.get("Content-Type")
        if not mediatypes.is_activity_content_type(content_type):
            raise InvalidDocument(
                f"{url} answered {content_type or 'no content type'}, "
                "not an ActivityStreams document"
            )
        body = await read_capped(
            response.content.iter_chunked(65536),
            declared=response.headers.get("Content-Length"),
            limit=MAX_DOCUMENT_BYTES,
            too_large=lambda what: InvalidDocument(f"{url} {what}"),
        )
        try:
            return parse_object(body, max_depth=MAX_JSON_DEPTH)
        except MalformedInput as exc:
            raise InvalidDocument(f"{url} answered {exc.reason}") from exc


async def fetch_page(
    http: httpx.AsyncClient, url: str, *, allow_http: bool = False, deadline: float = 30.0
) -> dict[str, Any]:
    """A collection page, fetched as :func:`federation.fetch.fetch_json` fetches a
    document but capped at :data:`MAX_PAGE_BYTES`: the same URL checks and guarded
    client, one deadline, ActivityStreams content type, a depth-limited parse, and the
    ``id`` the URL asked for. A page is the host's own document, linked from its own
    collection, so it is not followed through redirects."""
    parsed = check_url(url, allow_http=allow_http)
    try:
        async with asyncio.timeout(deadline):
            async with http.stream(
                "GET",
                parsed,
                headers={"Accept": ACCEPT_AS2},
                follow_redirects=False,
                timeout=httpx.Timeout(deadline, connect=5.0),
            ) as response:
                if response.status_code != 200:
                    raise FetchError(f"{url} answered {response.status_code}")
                content_type = response.headers.get("content-type")
                if not mediatypes.is_activity_content_type(content_type):
                    raise InvalidDocument(
                        f"{url} answered {content_type or 'no content type'}, "
                        "not an ActivityStreams document"
                    )
                body = await read_capped(
                    response.aiter_bytes(),
                    declared=response.headers.get("content-length"),
                    limit=MAX_PAGE_BYTES,
                    too_large=lambda what: InvalidDocument(f"{url} {what}"),
                )
    except TimeoutError:
        raise FetchError(f"{url}: no complete answer within {deadline:g} s") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
    try:
        document = parse_object(body, max_depth=MAX_JSON_DEPTH)
    except MalformedInput as exc:
        raise InvalidDocument(f"{url} answered {exc.reason}") from exc
    if document.get("id") != url:
        raise InvalidDocument(f"{url} answered a page whose id is {quoted(document.get('id'))}")
    return document


def _guard_of(http: httpx.AsyncClient) -> GuardedBackend | None:
    """The address guard of a client built on ``make_guarded_transport``, as
    :func:`federation.poster.poster_for` finds it; None for any other client."""
    transport = getattr(http, "_transport", None)
    pool = getattr(transport, "_pool", None)
    guard = getattr(pool, "_network_backend", None)
    if type(transport) is not httpx.AsyncHTTPTransport or getattr(http, "_mounts", None):
        return None
    return guard if isinstance(guard, GuardedBackend) else None


def _ssl_of(http: httpx.AsyncClient) -> ssl.SSLContext | None:
    pool = getattr(getattr(http, "_transport", None), "_pool", None)
    context = getattr(pool, "_ssl_context", None)
    return context if isinstance(context, ssl.SSLContext) else None


def _literal_refusal(host: str, guard: GuardedBackend | None) -> str | None:
    """An address written in the URL (``127.1``, ``2130706433``) is judged as the httpx
    guard judges it; names are left to the guard's resolver and the socket check."""
    from federation.netguard import parse_host_literal

    if guard is None:
        return None
    try:
        literal = parse_host_literal(host)
    except ValueError as exc:
        return f"invalid host {host!r}: {exc}"
    if literal is None:
        return None
    reason = guard.refusal(literal)
    return None if reason is None else str(ForbiddenAddress(host, literal, reason))


# --- reading the Question -----------------------------------------------------------


def _fraction(value: object, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AuditError(f'a fraction written as "p/q", not {quoted(value)}', field=name)
    text = str(value)
    if not _FRACTION.fullmatch(text):
        raise AuditError(f'a fraction written as "p/q", not {quoted(value)}', field=name)
    return Fraction(text)


def integer(value: object, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AuditError(f"a whole number of at least {minimum}, not {quoted(value)}", field=name)
    return value


def _boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise AuditError(f"true or false, not {quoted(value)}", field=name)
    return value


def string(value: object, name: str, *, limit: int = 2048) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise AuditError(
            f"a non-empty string (at most {limit} characters), not {quoted(value)}", field=name
        )
    return value


def stamp(value: object, name: str) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise AuditError(f"an ISO 8601 time, not {quoted(value)}", field=name)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AuditError(f"an ISO 8601 time, not {quoted(value)}", field=name) from None
    if moment.tzinfo is None:
        raise AuditError(f'a time with its time zone ("Z"), not {quoted(value)}', field=name)
    return moment


def quoted(value: object) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _required(document: Mapping[str, Any], name: str, where: str = "") -> Any:
    if name not in document or document[name] is None:
        raise AuditError("missing", field=f"{where}{name}")
    return document[name]


def read_proposal(question: Mapping[str, Any]) -> Proposal:
    """The tally's :class:`Proposal` from a published ``Question``; each field that is
    missing or malformed is an :class:`AuditError` naming it."""
    has_one, has_any = "oneOf" in question, "anyOf" in question
    if has_one == has_any:
        raise AuditError("a Question has exactly one of oneOf and anyOf", field="oneOf/anyOf")
    key = "anyOf" if has_any else "oneOf"
    raw_options = question[key]
    if not isinstance(raw_options, list) or not 2 <= len(raw_options) <= 256:
        raise AuditError("a list of 2 to 256 options", field=key)
    options = []
    for index, raw in enumerate(raw_options):
        where = f"{key}[{index}]"
        if not isinstance(raw, dict):
            raise AuditError(f"an option object, not {quoted(raw)}", field=where)
        name = string(raw.get("name"), f"{where}.name", limit=512)
        role_text = raw.get("optionRole", "plain")
        try:
            role = Role(role_text)
        except ValueError:
            choices = ", ".join(r.value for r in Role)
            raise AuditError(
                f"one of {choices}, not {quoted(role_text)}", field=f"{where}.optionRole"
            ) from None
        options.append(Option(name, role))
    multiple = has_any
    max_choices = 1
    if multiple:
        max_choices = (
            integer(question["maxChoices"], "maxChoices", minimum=1)
            if question.get("maxChoices") is not None
            else len(options)
        )
    rule = _rule(question.get("decisionRule"))
    colleges = question.get("colleges")
    weights: dict[str, Fraction] | None = None
    if colleges is not None:
        if not isinstance(colleges, list) or not colleges:
            raise AuditError("a list of colleges with their weights", field="colleges")
        weights = {}
        for index, raw in enumerate(colleges):
            where = f"colleges[{index}]"
            if not isinstance(raw, dict):
                raise AuditError(f"a college object, not {quoted(raw)}", field=where)
            name = string(raw.get("name"), f"{where}.name", limit=64)
            if name in weights:
                raise AuditError(f"college {name!r} is listed twice", field=where)
            weights[name] = _fraction(_required(raw, "weight", f"{where}."), f"{where}.weight")
    try:
        return Proposal(
            options=tuple(options),
            opens_at=stamp(_required(question, "startTime"), "startTime"),
            closes_at=stamp(_required(question, "endTime"), "endTime"),
            rule=rule,
            multiple_choice=multiple,
            max_choices=max_choices,
            quorum=_fraction(_required(question, "quorum"), "quorum"),
            abstentions_count_for_quorum=_boolean(
                _required(question, "abstentionsCountTowardQuorum"),
                "abstentionsCountTowardQuorum",
            ),
            replacements_allowed=_boolean(
                _required(question, "allowBallotChange"), "allowBallotChange"
            ),
            college_weights=weights,
            weighed_by="co-op" if question.get("countingMode") == "coop" else "college",
        )
    except Invalid as exc:
        wire = {
            "options": key,
            "opens_at": "startTime",
            "closes_at": "endTime",
            "rule": "decisionRule",
            "quorum": "quorum",
            "max_choices": "maxChoices",
            "college_weights": "colleges",
        }
        raise AuditError(exc.reason, field=wire.get(exc.field or "", exc.field)) from None


def _rule(raw: object) -> Rule | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise AuditError(f"a decision rule object, not {quoted(raw)}", field="decisionRule")
    kind = raw.get("type")
    try:
        if kind == "majority":
            return Majority()
        if kind == "qualified":
            threshold = _required(raw, "threshold", "decisionRule.")
            return Qualified(_fraction(threshold, "decisionRule.threshold"))
        if kind == "consent":
            block_at = _required(raw, "blockAt", "decisionRule.")
            return Consent(integer(block_at, "decisionRule.blockAt", minimum=1))
    except Invalid as exc:
        raise AuditError(exc.reason, field="decisionRule") from None
    raise AuditError(
        f"majority, qualified or consent, not {quoted(kind)}", field="decisionRule.type"
    )


def read_outcome(question: Mapping[str, Any], proposal: Proposal) -> Published:
    """The published result, each field checked (an :class:`AuditError` names a bad one)."""
    outcome = _required(question, "outcome")
    if not isinstance(outcome, dict):
        raise AuditError(f"an object, not {quoted(outcome)}", field="outcome")
    where = "outcome."
    result = _required(outcome, "result", where)
    if result not in {o.value for o in Outcome}:
        raise AuditError(
            f"one of {', '.join(o.value for o in Outcome)}, not {quoted(result)}",
            field="outcome.result",
        )
    published = Published(
        result=result,
        eligible=integer(_required(outcome, "eligible", where), "outcome.eligible"),
        quorum_needed=integer(_required(outcome, "quorumNeeded", where), "outcome.quorumNeeded"),
        turnout=integer(_required(outcome, "turnout", where), "outcome.turnout"),
        counts=_counts(_required(outcome, "counts", where), "outcome.counts"),
    )
    if outcome.get("passed") is not None:
        published.passed = _boolean(outcome["passed"], "outcome.passed")
    if outcome.get("quorumTurnout") is not None:
        published.quorum_turnout = integer(outcome["quorumTurnout"], "outcome.quorumTurnout")
    if "support" in outcome:
        published.has_support = True
        if outcome["support"] is not None:
            published.support = _fraction(outcome["support"], "outcome.support")
    if "weightedSupport" in outcome:
        published.has_weighted_support = True
        if outcome["weightedSupport"] is not None:
            published.weighted_support = _fraction(
                outcome["weightedSupport"], "outcome.weightedSupport"
            )
    if outcome.get("weightedShares") is not None:
        shares = outcome["weightedShares"]
        if not isinstance(shares, dict):
            raise AuditError(f"an object, not {quoted(shares)}", field="outcome.weightedShares")
        published.weighted_shares = {
            str(k): _fraction(v, f"outcome.weightedShares.{k}") for k, v in shares.items()
        }
    if outcome.get("reason") is not None:
        published.reason = string(outcome["reason"], "outcome.reason", limit=4096)
    if outcome.get("colleges") is not None:
        raw_colleges = outcome["colleges"]
        if not isinstance(raw_colleges, list):
            raise AuditError(f"a list, not {quoted(raw_colleges)}", field="outcome.colleges")
        published.colleges = {}
        for index, raw in enumerate(raw_colleges):
            at = f"outcome.colleges[{index}]"
            if not isinstance(raw, dict):
                raise AuditError(f"an object, not {quoted(raw)}", field=at)
            name = string(raw.get("name"), f"{at}.name", limit=64)
            weight = None if raw.get("weight") is None else _fraction(raw["weight"], f"{at}.weight")
            voters = integer(_required(raw, "voters", f"{at}."), f"{at}.voters")
            counts = _counts(_required(raw, "counts", f"{at}."), f"{at}.counts")
            published.colleges[name] = (weight, voters, counts)
    key = "anyOf" if proposal.multiple_choice else "oneOf"
    for index, raw in enumerate(question[key]):
        replies = raw.get("replies")
        if isinstance(replies, dict) and replies.get("totalItems") is not None:
            published.replies[raw["name"]] = integer(
                replies["totalItems"], f"{key}[{index}].replies.totalItems"
            )
    return published


def _counts(value: object, name: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise AuditError(f"an object of option name to count, not {quoted(value)}", field=name)
    return {str(k): integer(v, f"{name}.{k}") for k, v in value.items()}


# --- walking collections -------------------------------------------------------------


async def crawl(
    fetch: FetchDocument,
    fetch_large: FetchDocument,
    collection_url: str,
    origin: tuple[str, str, int | None],
    what: str,
    on_items: Callable[[list[Any]], None] | None = None,
) -> tuple[list[Any], int | None]:
    """Every item of an ordered collection, page by page, and its ``totalItems``.

    A page must say it is ``partOf`` the collection and live on the proposal's host. A
    page linked twice (a loop) is refused, and so are more than :data:`MAX_PAGES`
    pages or :data:`MAX_ITEMS` items: a host cannot keep the audit walking forever.
    ``on_items`` gets each page's items as soon as they are in.
    """
    _same_host(collection_url, origin, what)
    collection = await _fetch(fetch, collection_url, what)
    _same_host(collection.get("id"), origin, what)
    if collection.get("type") not in ("OrderedCollection", "Collection"):
        raise AuditError(
            f"an OrderedCollection, not a {quoted(collection.get('type'))}", field=what
        )
    total = collection.get("totalItems")
    if total is not None:
        total = integer(total, f"{what}.totalItems")
    items: list[Any] = []
    inline = collection.get("orderedItems")
    if inline is not None:
        if not isinstance(inline, list):
            raise AuditError("a list", field=f"{what}.orderedItems")
        items.extend(inline)
        if on_items is not None:
            on_items(inline)
    page_ref = collection.get("first")
    seen: set[str] = set()
    pages = 0
    while page_ref is not None:
        pages += 1
        if pages > MAX_PAGES:
            raise AuditError(f"more than {MAX_PAGES} pages: the walk stops here", field=what)
        if isinstance(page_ref, dict):  # the first page embedded in the collection
            page = page_ref
            page_url = str(page.get("id") or collection_url)
        elif isinstance(page_ref, str):
            page_url = page_ref
            _same_host(page_url, origin, f"{what} page")
            if page_url in seen:
                raise AuditError(f"page {page_url} comes back: the pages loop", field=what)
            page = await _fetch(fetch_large, page_url, f"{what} page")
            _same_host(page.get("id"), origin, f"{what} page")
        else:
            raise AuditError(f"a page link, not {quoted(page_ref)}", field=f"{what} page")
        seen.add(page_url)
        if page.get("partOf") != collection_url:
            raise AuditError(
                f"page {page_url} is part of {quoted(page.get('partOf'))}, not of {collection_url}",
                field=f"{what} page",
            )
        page_items = page.get("orderedItems", [])
        if not isinstance(page_items, list):
            raise AuditError("a list", field=f"{what} page {page_url}: orderedItems")
        items.extend(page_items)
        if len(items) > MAX_ITEMS:
            raise AuditError(f"more than {MAX_ITEMS} items: the walk stops here", field=what)
        if on_items is not None:
            on_items(page_items)
        page_ref = page.get("next")
    return items, total


def _same_host(url: object, origin: tuple[str, str, int | None], what: str) -> None:
    if not isinstance(url, str):
        raise AuditError(f"a URL, not {quoted(url)}", field=what)
    try:
        here = url_origin(url)
    except httpx.InvalidURL:
        raise AuditError(f"not a valid URL: {quoted(url)}", field=what) from None
    if here != origin:
        raise AuditError(
            f"{url} is on another host than the proposal ({origin[0]}://{origin[1]}"
            f"{'' if origin[2] is None else f':{origin[2]}'}): refused",
            field=what,
        )


async def _fetch(fetch: FetchDocument, url: str, what: str) -> dict[str, Any]:
    try:
        return await fetch(url)
    except FederationError as exc:
        raise AuditError(f"could not fetch {url}: {exc.reason}", field=what) from None


# --- the electorate -------------------------------------------------------------------


def _read_electorate(items: list[Any], problems: list[str]) -> dict[str, str | None]:
    eligible: dict[str, str | None] = {}
    for index, item in enumerate(items):
        where = f"electorate item {index + 1}"
        if not isinstance(item, dict):
            raise AuditError(f"an object, not {quoted(item)}", field=where)
        voter = string(item.get("voter"), f"{where}.voter")
        college = item.get("college")
        if college is not None:
            college = string(college, f"{where}.college", limit=64)
        if voter in eligible:
            problems.append(f"the electorate lists {voter} more than once")
        eligible[voter] = college
    return eligible


# --- ballots --------------------------------------------------------------------------


def _read_ballot(position: int, item: object) -> BallotCheck:
    where = f"ballots item {position}"
    if not isinstance(item, dict):
        raise AuditError(f"an object, not {quoted(item)}", field=where)
    if item.get("type", "Ballot") != "Ballot":
        raise AuditError(f"a Ballot, not a {quoted(item.get('type'))}", field=f"{where}.type")
    choices = _required(item, "choices", f"{where}.")
    if not isinstance(choices, list) or len(choices) > 256:
        raise AuditError(f"a list of option names, not {quoted(choices)}", field=f"{where}.choices")
    status = _required(item, "status", f"{where}.")
    if status not in STATUSES:
        raise AuditError(
            f"one of {', '.join(STATUSES)}, not {quoted(status)}", field=f"{where}.status"
        )
    college = item.get("college")
    votes = item.get("votes", [])
    if not isinstance(votes, list):
        raise AuditError(f"a list of Notes, not {quoted(votes)}", field=f"{where}.votes")
    reason = item.get("reason")
    return BallotCheck(
        position=position,
        voter=string(item.get("voter"), f"{where}.voter"),
        college=None if college is None else string(college, f"{where}.college", limit=64),
        choices=tuple(string(c, f"{where}.choices", limit=512) for c in choices),
        cast_at=stamp(_required(item, "castAt", f"{where}."), f"{where}.castAt"),
        activity=string(item.get("activity"), f"{where}.activity"),
        status=status,
        reason=reason if isinstance(reason, str) else None,
        votes=votes,
    )


def _check_notes(check: BallotCheck, proposal_id: str) -> list[dict[str, Any]]:
    """The ballot's Notes that carry a proof, after checking that the Notes say what the
    ballot says: this proposal, this voter, and exactly the ballot's choices."""
    signed: list[dict[str, Any]] = []
    names: list[str] = []
    if len(check.votes) > MAX_NOTES_PER_BALLOT:
        check.problems.append(f"{len(check.votes)} Notes, more than any ballot can need")
    for index, note in enumerate(check.votes[:MAX_NOTES_PER_BALLOT]):
        if not isinstance(note, dict):
            check.problems.append(f"vote {index + 1} is not a Note object")
            continue
        if note.get("inReplyTo") != proposal_id:
            check.problems.append(
                f"vote {index + 1} replies to {quoted(note.get('inReplyTo'))}, not this proposal"
            )
        if note.get("attributedTo") != check.voter:
            check.problems.append(
                f"vote {index + 1} is attributed to {quoted(note.get('attributedTo'))}, "
                "not the voter"
            )
        name = note.get("name")
        if not isinstance(name, str) or name not in check.choices:
            check.problems.append(
                f"vote {index + 1} names {quoted(name)}, which is not among the ballot's "
                f"choices {list(check.choices)}"
            )
        else:
            names.append(name)
        if "proof" in note:
            signed.append(note)
    if check.votes and sorted(names) != sorted(check.choices) and not check.problems:
        check.problems.append(f"the Notes name {sorted(names)}, the ballot {sorted(check.choices)}")
    if not check.votes and check.choices:
        check.problems.append("the ballot carries no Note")
    if check.problems:
        check.proof = "inconsistent"
    return signed


def keys_of_voter(voter: str, document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys the voter's own actor document publishes for assertions."""
    if document.get("id") != voter:
        return {}
    found: dict[str, Ed25519PublicKey] = {}
    entries = document.get("assertionMethod")
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        return found
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("controller") != voter:
            continue
        key_id = entry.get("id")
        if not isinstance(key_id, str) or entry.get("type", "Multikey") != "Multikey":
            continue
        try:
            found[key_id] = keys.multibase_to_ed25519(entry.get("publicKeyMultibase"))  # type: ignore[arg-type]
        except ValueError:
            continue
    return found


def _verify_ballot(
    check: BallotCheck, signed: list[dict[str, Any]], voter_keys: dict[str, Ed25519PublicKey] | str
) -> None:
    """Verify each signed Note of the ballot; ``voter_keys`` is the voter's keys, or why
    they could not be fetched."""
    failures: list[str] = []
    verified = 0
    for note in signed:
        # The key is looked up by the method the proof names; verify() then checks the
        # whole proof. Asking verification_method() first would decode every signature
        # twice, a tenth of an audit's time.
        proof = note["proof"]
        method = proof.get("verificationMethod") if isinstance(proof, dict) else None
        if not isinstance(method, str):
            try:
                proofs.verification_method(note)
            except proofs.ProofError as exc:
                failures.append(f"unreadable proof: {exc.reason}")
            continue
        if isinstance(voter_keys, str):
            continue  # cannot tell: the host vouches for it
        key = voter_keys.get(method)
        if key is None:
            owner = urldefrag(method).url
            if owner != check.voter:
                failures.append(
                    f"signed with {method}, a key of {owner}, not of the voter (key confusion)"
                )
            else:
                failures.append(f"signed with {method}, which the voter's actor does not publish")
            continue
        try:
            proofs.verify(note, key)
        except proofs.ProofError as exc:
            failures.append(f"the proof does not verify: {exc.reason}")
            continue
        verified += 1
    if failures:
        check.proof = "failed"
        check.problems.extend(failures)
    elif isinstance(voter_keys, str):
        check.problems.append(f"its proof could not be checked: {voter_keys}")
    elif verified == len(check.votes):
        check.proof = "verified"
    else:
        check.problems.append(f"only {verified} of its {len(check.votes)} Notes carry a proof")


class _Verifier:
    """Checks ballots as their pages arrive: each ballot's Notes at once, then its proofs
    once its voter's actor document is in. Each voter's document is fetched once
    (:data:`ACTOR_CONCURRENCY` at a time), and the fetching starts with the first page,
    so that the walk, the fetches and the verifications overlap."""

    def __init__(self, fetch: FetchDocument, proposal_id: str) -> None:
        self._fetch = fetch
        self._proposal_id = proposal_id
        self._gate = asyncio.Semaphore(ACTOR_CONCURRENCY)
        self._keys: dict[str, asyncio.Future[dict[str, Ed25519PublicKey] | str]] = {}
        self._tasks: list[asyncio.Future[None]] = []

    def add(self, check: BallotCheck) -> None:
        signed = _check_notes(check, self._proposal_id)
        if signed and not check.problems:
            self._tasks.append(asyncio.ensure_future(self._verify(check, signed)))

    async def _verify(self, check: BallotCheck, signed: list[dict[str, Any]]) -> None:
        keys_of = self._keys.get(check.voter)
        if keys_of is None:
            keys_of = self._keys[check.voter] = asyncio.ensure_future(self._load(check.voter))
        _verify_ballot(check, signed, await keys_of)

    async def _load(self, voter: str) -> dict[str, Ed25519PublicKey] | str:
        async with self._gate:
            try:
                return keys_of_voter(voter, await self._fetch(voter))
            except FederationError as exc:
                return f"the voter's actor document is unavailable ({exc.reason})"

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        for loading in self._keys.values():
            loading.cancel()


# --- comparing ------------------------------------------------------------------------


def _recount_statuses(result: Result) -> dict[Ballot, str]:
    statuses: dict[Ballot, str] = {}
    for refusal in result.set_aside:
        statuses[refusal.ballot] = "replaced" if refusal.reason is Reason.REPLACED else "set aside"
    for refusal in result.refused:
        statuses[refusal.ballot] = "refused"
    return statuses


def _fr(value: Fraction | None) -> str:
    if value is None:
        return "none"
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


def compare(published: Published, recount: Result, problems: list[str]) -> None:
    def differ(what: str, shown: object, computed: object) -> None:
        if shown != computed:
            problems.append(f"{what}: published {shown}, recomputed {computed}")

    differ("result", published.result, recount.outcome.value)
    if published.passed is not None:
        differ("passed", published.passed, recount.passed)
    differ("eligible", published.eligible, recount.eligible)
    differ("quorumNeeded", published.quorum_needed, recount.quorum_needed)
    differ("turnout", published.turnout, recount.turnout)
    if published.quorum_turnout is not None:
        differ("quorumTurnout", published.quorum_turnout, recount.quorum_turnout)
    for name in dict.fromkeys([*recount.counts, *published.counts]):
        if name not in recount.counts:
            problems.append(f"count for {name!r}: published, but the proposal has no such option")
        else:
            differ(
                f"count for {name!r}", published.counts.get(name, "nothing"), recount.counts[name]
            )
    for name, n in published.replies.items():
        differ(f"replies.totalItems of {name!r}", n, recount.counts.get(name))
    if published.has_support:
        differ("support", _fr(published.support), _fr(recount.support))
    if published.has_weighted_support:
        differ("weightedSupport", _fr(published.weighted_support), _fr(recount.weighted_support))
    if published.weighted_shares is not None or recount.weighted_shares is not None:
        shown = published.weighted_shares or {}
        computed = recount.weighted_shares or {}
        for name in dict.fromkeys([*computed, *shown]):
            differ(f"weighted share of {name!r}", _fr(shown.get(name)), _fr(computed.get(name)))
    if published.colleges is not None:
        computed_colleges = {c.name: c for c in recount.colleges}
        for name in dict.fromkeys([*computed_colleges, *published.colleges]):
            if name not in published.colleges:
                problems.append(f"college {name!r}: not published")
                continue
            if name not in computed_colleges:
                problems.append(
                    f"college {name!r}: published, but no voter of the electorate is in it"
                )
                continue
            weight, voters, counts = published.colleges[name]
            college = computed_colleges[name]
            if weight is not None or college.weight is not None:
                differ(f"college {name!r} weight", _fr(weight), _fr(college.weight))
            differ(f"college {name!r} voters", voters, college.voters)
            for option in dict.fromkeys([*college.counts, *counts]):
                differ(
                    f"college {name!r} count for {option!r}",
                    counts.get(option, "nothing"),
                    college.counts.get(option, "nothing"),
                )


# --- the audit ------------------------------------------------------------------------


async def audit(url: str, *, http: httpx.AsyncClient, allow_http: bool = False) -> AuditReport:
    """Fetch the closed proposal at ``url`` with everything its count used, verify what
    can be verified, recount, and say where the published result and the recount
    differ. Raises :class:`AuditError` when the proposal cannot be reached or read."""

    async def fetch(target: str) -> dict[str, Any]:
        return await fetch_json(http, target, allow_http=allow_http)

    async def fetch_large(target: str) -> dict[str, Any]:
        return await fetch_page(http, target, allow_http=allow_http)

    try:
        check_url(url, allow_http=allow_http)
    except FetchError as exc:
        raise AuditError(exc.reason) from None
    question = await _fetch(fetch, url, "proposal")
    if question.get("type") != "Question":
        raise AuditError(f"{url} is a {quoted(question.get('type'))}, not a Question", field="type")
    proposal_id = string(question.get("id"), "id")
    # The document's own id, which fetch_json checked it is served at: everything the
    # count used must live on that host.
    origin = url_origin(proposal_id)
    if not question.get("closed"):
        raise AuditError(
            "the proposal is not closed: its result is only final, and its ballots only "
            "published, once it is",
            field="closed",
        )
    if question.get("countingMode") == "subtotal":
        from node.governance.audit_subtotals import audit_subtotals

        proposal = read_proposal(question)
        actors = _ActorFetcher(http, allow_http=allow_http)
        async with actors.opened():
            return await audit_subtotals(
                question,
                url=url,
                proposal=proposal,
                published=read_outcome(question, proposal),
                fetch=fetch,
                fetch_large=fetch_large,
                actors=actors,
            )
    if question.get("ballots") is None:
        raise AuditError(
            "the proposal publishes no ballots collection (a secret ballot, or a host "
            "that does not publish them): there is nothing to recount",
            field="ballots",
        )
    proposal = read_proposal(question)
    published = read_outcome(question, proposal)
    title = question.get("name")
    name = title if isinstance(title, str) else proposal_id
    problems: list[str] = []

    snapshot = _required(question, "rosterSnapshot")
    if not isinstance(snapshot, dict):
        raise AuditError(f"an object, not {quoted(snapshot)}", field="rosterSnapshot")
    electorate_url = string(snapshot.get("id"), "rosterSnapshot.id")
    digest = string(snapshot.get("digest"), "rosterSnapshot.digest", limit=256)
    ballots_url = string(question["ballots"], "ballots")

    checks: list[BallotCheck] = []
    actors = _ActorFetcher(http, allow_http=allow_http)
    async with actors.opened():
        verifier = _Verifier(actors, proposal_id)

        def read_ballots(items: list[Any]) -> None:
            for item in items:
                check = _read_ballot(len(checks) + 1, item)
                checks.append(check)
                verifier.add(check)

        walks = [
            asyncio.ensure_future(crawl(fetch, fetch_large, electorate_url, origin, "electorate")),
            asyncio.ensure_future(
                crawl(fetch, fetch_large, ballots_url, origin, "ballots", read_ballots)
            ),
        ]
        try:
            walked = await asyncio.gather(*walks)
            await verifier.wait()
        finally:  # one walk failing stops everything still running
            for walk in walks:
                walk.cancel()
            verifier.cancel()
    (electorate_items, electorate_total), (ballot_items, ballots_total) = walked
    eligible = _read_electorate(electorate_items, problems)
    computed_digest = roster_digest(eligible.items())
    if len(eligible) != len(electorate_items):
        computed_digest = roster_digest((i["voter"], i.get("college")) for i in electorate_items)
    if computed_digest != digest:
        problems.append(
            f"the electorate does not match its digest: published {digest}, "
            f"the {len(electorate_items)} members served give {computed_digest}"
        )
    if snapshot.get("totalItems") is not None:
        total = integer(snapshot["totalItems"], "rosterSnapshot.totalItems")
        if total != len(electorate_items):
            problems.append(
                f"rosterSnapshot.totalItems is {total}, "
                f"the electorate collection serves {len(electorate_items)}"
            )
    if electorate_total is not None and electorate_total != len(electorate_items):
        problems.append(
            f"the electorate collection says totalItems {electorate_total}, "
            f"its pages hold {len(electorate_items)}"
        )
    if ballots_total is not None and ballots_total != len(ballot_items):
        problems.append(
            f"the ballots collection says totalItems {ballots_total}, "
            f"its pages hold {len(ballot_items)}"
        )

    listed = Counter(c.activity for c in checks)
    for activity, times in listed.items():
        if times > 1:
            problems.append(f"the ballot of activity {activity} is listed {times} times")
    counted = Counter(c.voter for c in checks if c.status == "counted")
    for voter, times in counted.items():
        if times > 1:
            problems.append(f"{voter} has {times} ballots published as counted")

    kept = [c for c in checks if not c.excluded]
    try:
        recount = tally(proposal, eligible, (c.ballot for c in kept))
    except Invalid as exc:
        raise AuditError(
            f"the proposal cannot be recounted: {exc.reason}",
            field="colleges" if exc.field == "college_weights" else exc.field,
        ) from None
    statuses = _recount_statuses(recount)
    for check in kept:
        check.recount_status = statuses.get(check.ballot, "counted")
        if check.recount_status != check.status:
            problems.append(
                f"ballot {check.position} ({check.voter}, {check.activity}): published "
                f"{check.status}, recount {check.recount_status}"
            )
    for check in checks:
        if check.excluded:
            problems.append(
                f"ballot {check.position} ({check.voter}, {check.activity}) is {check.label}: "
                + "; ".join(check.problems)
            )
    compare(published, recount, problems)
    return AuditReport(
        url=url,
        name=name,
        proposal=proposal,
        published=published,
        recount=recount,
        electorate=eligible,
        ballots=checks,
        discrepancies=problems,
    )


# --- rendering ------------------------------------------------------------------------


def _rule_text(proposal: Proposal) -> str:
    rule = proposal.rule
    if rule is None:
        return f"multiple choice, at most {proposal.max_choices}; counts only"
    if isinstance(rule, Majority):
        text = "simple majority (more than half of for + against)"
    elif isinstance(rule, Qualified):
        text = f"qualified majority, at least {_fr(rule.fraction)} of for + against"
    else:
        text = f"consent, blocked by {rule.block_at} objection{'s' if rule.block_at != 1 else ''}"
    if proposal.college_weights is not None:
        text += ", colleges weighted"
    return text


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _percent(share: Fraction | None) -> str:
    if share is None:
        return "-"
    tenths = round(share * 1000)
    return f"{tenths // 10}.{tenths % 10} %"


def table(rows: list[list[str]]) -> list[str]:
    rows = [row + [""] * (len(rows[0]) - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


def render(report: AuditReport) -> str:
    """The report as text: the proposal, its rule and quorum, the options with the
    published and recomputed counts (per college where colleges weigh), the proofs, the
    discrepancies and the verdict."""
    proposal, published, recount = report.proposal, report.published, report.recount
    lines = [
        f"Proposal  {report.name}",
        f"          {report.url}",
        f"Voting    {when(proposal.opens_at)} to {when(proposal.closes_at)}",
        f"Rule      {_rule_text(proposal)}",
        f"Quorum    {_fr(proposal.quorum)} of {recount.eligible} eligible = "
        f"{recount.quorum_needed} needed; {recount.quorum_turnout} counted toward it"
        f"{'' if proposal.abstentions_count_for_quorum else ' (abstentions not counted)'}",
        "Changes   "
        + (
            "allowed: the last ballot counts"
            if proposal.replacements_allowed
            else "not allowed: the first ballot counts"
        ),
        "",
    ]
    weights = proposal.college_weights
    header = ["Option", "Role", "Published", "Recomputed"]
    if weights is not None:
        header.append("Weighted share")
    rows = [header]
    shares = recount.weighted_shares or {}
    for option in proposal.options:
        row = [
            option.name,
            option.role.value,
            str(published.counts.get(option.name, "-")),
            str(recount.counts[option.name]),
        ]
        if weights is not None:
            row.append(_percent(shares.get(option.name)))
        rows.append(row)
    rows.append(["Turnout", "", str(published.turnout), str(recount.turnout)])
    rows.append(["Eligible", "", str(published.eligible), str(recount.eligible)])
    lines += table(rows)
    if recount.colleges:
        lines += ["", "Colleges (recomputed; published in brackets where it differs)"]
        college_rows = [["College", "Weight", "Voters", *(o.name for o in proposal.options)]]
        for college in recount.colleges:
            shown = (published.colleges or {}).get(college.name)
            voters = str(college.voters)
            if shown is not None and shown[1] != college.voters:
                voters += f" [{shown[1]}]"
            cells = []
            for option in proposal.options:
                cell = str(college.counts.get(option.name, 0))
                if shown is not None and shown[2].get(option.name) != college.counts.get(
                    option.name
                ):
                    cell += f" [{shown[2].get(option.name, '-')}]"
                cells.append(cell)
            weight = "-" if college.weight is None else _fr(college.weight)
            college_rows.append([college.name, weight, voters, *cells])
        lines += table(college_rows)
    if recount.weighted_support is not None:
        lines.append(
            f"  Weighted support: {_percent(recount.weighted_support)} "
            f"({_fr(recount.weighted_support)})"
        )
    lines += [
        "",
        f"Outcome   published: {published.result}"
        + (f" ({published.reason})" if published.reason else ""),
        f"          recomputed: {recount.outcome.value} ({recount.reason})",
        "",
    ]
    if report.subtotals or report.shares:
        from node.governance.audit_subtotals import render_subtotals

        lines += render_subtotals(report)
        lines += [
            f"          {c.coop}: {c.label} — {'; '.join(c.problems)}"
            for c in report.subtotals
            if c.problems
        ]
        return _ending(lines, report)
    lines += [
        f"Ballots   {len(report.ballots)} published: {report.verified} with proofs verified, "
        f"{report.unverifiable} unverifiable, {report.failed} failed (TAMPERED)"
        + (f", {report.inconsistent} inconsistent" if report.inconsistent else ""),
    ]
    excluded = sum(1 for b in report.ballots if b.excluded)
    if excluded:
        lines.append(
            f"          {excluded} left out of the recount (what the voter signed is not "
            "what was published): the recount is made without them"
        )
    unverifiable = [b for b in report.ballots if b.proof == "unverifiable"]
    if unverifiable:
        lines.append("          Unverifiable (no proof: the host vouches for it):")
        for check in unverifiable[:50]:
            note = f" — {'; '.join(check.problems)}" if check.problems else ""
            lines.append(f"            {check.voter} ({check.activity}){note}")
        if len(unverifiable) > 50:
            lines.append(f"            ... and {len(unverifiable) - 50} more")
    return _ending(lines, report)


def _ending(lines: list[str], report: AuditReport) -> str:
    lines.append("")
    if report.discrepancies:
        lines.append(f"Discrepancies ({len(report.discrepancies)}):")
        lines += [f"  - {d}" for d in report.discrepancies]
    else:
        lines.append("Discrepancies: none")
    lines += ["", f"Verdict: {report.verdict}"]
    return "\n".join(lines) + "\n"
