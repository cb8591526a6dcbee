"""Media types of the protocol, and reading ``Accept`` and ``Content-Type``.

ActivityPub names two spellings of the same thing
(https://www.w3.org/TR/activitypub/#retrieving-objects):
``application/activity+json`` and
``application/ld+json; profile="https://www.w3.org/ns/activitystreams"``.
Peers use both: Mastodon asks with ``application/activity+json,
application/ld+json`` (the second without a profile), so a plain
``application/ld+json`` in ``Accept`` counts too. An object's URL serves the
JSON to them and the HTML page to browsers.
"""

from __future__ import annotations

import functools
import string

__all__ = [
    "AS2",
    "AS2_PROFILE",
    "JRD",
    "LD_JSON_AS2",
    "is_activity_content_type",
    "parse_accept",
    "prefers_activity_json",
]

AS2 = "application/activity+json"
AS2_PROFILE = "https://www.w3.org/ns/activitystreams"
LD_JSON_AS2 = f'application/ld+json; profile="{AS2_PROFILE}"'
JRD = "application/jrd+json"

_LD_JSON = "application/ld+json"
_HTML = "text/html"
# The namespace IRI is https; a few peers still write it with http.
_AS2_PROFILES = frozenset({AS2_PROFILE, "http://www.w3.org/ns/activitystreams"})
# A header longer than this is not from a real client; reading it is wasted work.
_MAX_HEADER_LENGTH = 8192

MediaRange = tuple[str, dict[str, str], float]


def parse_accept(header: str | None) -> list[MediaRange]:
    """Read an ``Accept`` header into ``(type/subtype, parameters, q)`` in header order.

    Types and parameter names are lower-cased, quoted values unquoted. Junk is
    skipped rather than refused (RFC 9110 section 12.5.1 asks a server to be
    lenient): entries without a ``type/subtype``, unparseable q-values. A bare
    ``*``, which some HTTP libraries send, is read as ``*/*``. Parameters after
    ``q`` are accept-extensions and are dropped.
    """
    if not header or len(header) > _MAX_HEADER_LENGTH:
        return []
    ranges: list[MediaRange] = []
    for entry in _split_outside_quotes(header, ","):
        parsed = _parse_media_range(entry)
        if parsed is not None:
            ranges.append(parsed)
    return ranges


def prefers_activity_json(accept: str | None) -> bool:
    """True when the client would rather have ActivityStreams JSON than HTML.

    Each of ActivityStreams JSON and HTML gets the q-value of the most specific
    range that matches it (RFC 9110 section 12.5.1); q=0 means "not acceptable".
    A tie goes to JSON only when an ActivityStreams type is named, so ``*/*``
    alone, or a missing header, gets HTML.
    """
    ranges = parse_accept(accept)
    as2_q, as2_named = max(
        _quality(ranges, "application", "activity+json"),
        _quality(ranges, "application", "ld+json"),
    )
    html_q, _ = _quality(ranges, "text", "html")
    if as2_q <= 0:
        return False
    if as2_q != html_q:
        return as2_q > html_q
    return as2_named


def wants_html(accept: str | None) -> bool:
    """True when a client should get a page rather than ActivityStreams: it names
    ``text/html`` and does not prefer ActivityStreams to it (a browser).

    Every document the node serves at one URL for both people and servers decides with
    this, so that a server gets the same answer everywhere: ActivityStreams for
    ``application/activity+json``, for ``application/json``, for ``*/*`` and for no
    ``Accept`` at all."""
    named = any(media == "text/html" and quality > 0 for media, _, quality in parse_accept(accept))
    return named and not prefers_activity_json(accept)


@functools.lru_cache(maxsize=256)
def is_activity_content_type(content_type: str | None) -> bool:
    """True when a request body's ``Content-Type`` says ActivityStreams.

    That is ``application/activity+json`` with any parameters (``charset``), or
    ``application/ld+json`` whose ``profile`` names the ActivityStreams namespace.
    Remembered for the last few hundred values: peers send the same few over and over,
    and every inbox request asks.
    """
    ranges = parse_accept(content_type)
    if len(ranges) != 1:
        return False
    media_type, params, _ = ranges[0]
    if media_type == AS2:
        return True
    return media_type == _LD_JSON and _names_as2_profile(params)


# --- internals -------------------------------------------------------------------


def _quality(ranges: list[MediaRange], main: str, sub: str) -> tuple[float, bool]:
    """The q-value the client gives ``main/sub``, and whether it named it.

    Precedence follows RFC 9110: a range with matching parameters over the bare
    type, over ``main/*``, over ``*/*``. Among ranges of equal precedence the
    highest q wins.
    """
    best_rank = -1
    best_q = 0.0
    for media_type, params, q in ranges:
        rank = _match_rank(media_type, params, main, sub)
        if rank < 0:
            continue
        if rank > best_rank or (rank == best_rank and q > best_q):
            best_rank, best_q = rank, q
    return best_q, best_rank >= 2


def _match_rank(media_type: str, params: dict[str, str], main: str, sub: str) -> int:
    if media_type == "*/*":
        return 0
    if media_type == f"{main}/*":
        return 1
    if media_type != f"{main}/{sub}":
        return -1
    # Only the ActivityStreams profile makes an ld+json range more specific;
    # other parameters (charset, a JSON-LD form) do not change what we serve.
    if sub == "ld+json" and _names_as2_profile(params):
        return 3
    return 2


def _names_as2_profile(params: dict[str, str]) -> bool:
    # "profile" is a space-separated list of URIs (RFC 6906 section 3.1).
    return any(uri in _AS2_PROFILES for uri in params.get("profile", "").split())


def _parse_media_range(entry: str) -> MediaRange | None:
    parts = _split_outside_quotes(entry, ";")
    media_type = parts[0].strip().lower()
    if media_type == "*":
        media_type = "*/*"
    main, slash, sub = media_type.partition("/")
    if not slash or not _is_token(main) or not _is_token(sub):
        return None
    params: dict[str, str] = {}
    q = 1.0
    for part in parts[1:]:
        name, equals, value = part.partition("=")
        name = name.strip().lower()
        if not equals or not _is_token(name):
            continue
        value = _unquote(value.strip())
        if name == "q":
            parsed_q = _parse_q(value)
            if parsed_q is None:
                return None
            q = parsed_q
            break
        params[name] = value
    return media_type, params, q


def _parse_q(value: str) -> float | None:
    try:
        q = float(value)
    except ValueError:
        return None
    # Lenient about the digits (RFC 9110 allows three decimals), but float()
    # also reads "nan" and "inf", and a weight must lie in 0..1.
    if not 0.0 <= q <= 1.0:
        return None
    return q


# tchar, RFC 9110 section 5.6.2.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)


def _is_token(text: str) -> bool:
    return bool(text) and all(char in _TOKEN_CHARS for char in text)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on ``separator``, except inside a quoted-string (RFC 9110 5.6.4)."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return pieces


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        out: list[str] = []
        escaped = False
        for char in inner:
            if char == "\\" and not escaped:
                escaped = True
                continue
            escaped = False
            out.append(char)
        return "".join(out)
    return value
