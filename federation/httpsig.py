"""HTTP signatures as the fediverse sends them: draft-cavage-http-signatures-12, written
and read the way Mastodon writes and reads them.

- The draft: https://datatracker.ietf.org/doc/html/draft-cavage-http-signatures-12
- Mastodon's account of it: https://docs.joinmastodon.org/spec/security/#http
- Mastodon's code: ``app/lib/request.rb`` signs; ``app/lib/signed_request.rb`` (formerly
  ``app/controllers/concerns/signature_verification.rb``) verifies.

Verification is kept in layers, so that each can be tested alone:

- pure pieces: :func:`parse_signature_header`, :func:`signing_string` and
  :func:`verify_body_digest` (over :mod:`federation.digests`, shared with RFC 9421);
- :func:`verify_signature`: cryptography only, a yes or a no;
- :func:`check_policy`: Mastodon's rules on what must be signed and for how long a
  signature holds.

:func:`verify_request` ties them together. It returns a :class:`VerifiedSignature` or
raises: ``MalformedInput`` (400) for a header it cannot read, ``NotAuthorized`` (401)
for a signature it will not accept, each with a reason the peer's admin can act on.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from federation.clock import Clock
from federation.digests import (
    b64decode,
    b64encode,
    content_digest_header,
    find_mismatch,
    parse_content_digest,
    parse_digest,
    sha256_digest_header,
)
from federation.errors import MalformedInput, NotAuthorized
from federation.keys import PrivateKey, PublicKey

# sha256_digest_header and content_digest_header belong to federation.digests; they stay
# importable from here for existing callers.
__all__ = [
    "CLOCK_SKEW_MARGIN",
    "DEFAULT_VALIDITY",
    "EXPIRATION_WINDOW_LIMIT",
    "KeyLookup",
    "KeyRefetch",
    "SignatureAuth",
    "SignatureParams",
    "VerifiedSignature",
    "check_policy",
    "content_digest_header",
    "format_signature_header",
    "parse_signature_header",
    "sha256_digest_header",
    "sign_request",
    "sign_string",
    "signing_string",
    "verify_body_digest",
    "verify_request",
    "verify_signature",
]

REQUEST_TARGET = "(request-target)"
CREATED = "(created)"
EXPIRES = "(expires)"

RSA_SHA256 = "rsa-sha256"
HS2019 = "hs2019"
SUPPORTED_ALGORITHMS = frozenset({RSA_SHA256, HS2019})

# The time window Mastodon documents (docs.joinmastodon.org/spec/security): a signed
# Date at most 1 hour ahead of our clock and at most 12 hours old. A signature with a
# signed ``expires`` holds until then (never beyond 12 hours). Mastodon's code is
# stricter for Date-only signatures (5 minutes plus the hour of skew); we keep the
# documented window, which is what peers are told to expect, and rely on de-duplication
# by activity id to make a replay within it harmless.
CLOCK_SKEW_MARGIN = timedelta(hours=1)
EXPIRATION_WINDOW_LIMIT = timedelta(hours=12)
DEFAULT_VALIDITY = EXPIRATION_WINDOW_LIMIT - CLOCK_SKEW_MARGIN

# Methods whose body must be covered by a signed digest (Mastodon requires it of POST).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_HOST_METHODS = frozenset({"GET", "HEAD"})

# Stateless, so made once: every verification and signature uses them.
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()

KeyLookup = Callable[[str], Awaitable[PublicKey]]
KeyRefetch = Callable[[str], Awaitable[PublicKey | None]]


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """The parameters of one ``Signature`` header (draft-cavage-12, section 2.1)."""

    key_id: str
    algorithm: str
    headers: list[str]
    signature: bytes
    created: int | None = None
    expires: Decimal | None = None


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """Who signed a request that verified, and how."""

    key_id: str
    algorithm: str
    headers: list[str]


# --- The Signature header -------------------------------------------------------------

# auth-param = token BWS "=" BWS ( token / quoted-string ), RFC 9110 section 11.2.
_TOKEN = re.compile(r"[0-9A-Za-z!#$%&'*+.^_`|~-]+")
_QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
# Any whitespace, line breaks included: the draft's examples fold the header over lines.
_WHITESPACE = re.compile(r"\s*")
_INTEGER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # section 2.1.5 allows subseconds in expires
# The shape nearly every peer sends: name="value" or name=token pairs separated by commas,
# no escapes, no line breaks. Such a header is read by two regular expressions; anything
# else takes the general parser below, which also explains what is wrong.
_TOKEN_CHARS = r"[0-9A-Za-z!#$%&'*+.^_`|~-]+"  # noqa: S105 (a character class, not a secret)
_PLAIN_PARAM = rf'{_TOKEN_CHARS}[ \t]*=[ \t]*(?:"[^"\\]*"|{_TOKEN_CHARS})'
_PLAIN_LIST = re.compile(rf"[ \t]*{_PLAIN_PARAM}(?:[ \t]*,[ \t]*{_PLAIN_PARAM})*[ \t]*")
_PLAIN_PAIR = re.compile(rf'({_TOKEN_CHARS})[ \t]*=[ \t]*("[^"\\]*"|{_TOKEN_CHARS})')
_KNOWN_PARAMS = frozenset({"keyid", "algorithm", "headers", "signature", "created", "expires"})
# Old versions of node-http-signature prefix the value with the scheme name, as in an
# Authorization header; Mastodon's parser accepts that (``buggy_prefix``).
_SCHEME_PREFIX = "signature "


def parse_signature_header(value: str) -> SignatureParams:
    """Read a ``Signature`` header value; ``MalformedInput`` says what is wrong with it.

    Defaults follow Mastodon: no ``algorithm`` means ``hs2019``, and no ``headers``
    means ``(created)`` for hs2019 (as section 2.1.6 says) and ``date`` otherwise.
    """
    raw = _auth_params(value)
    key_id = raw.get("keyid")
    if not key_id:
        raise MalformedInput("the Signature header has no keyId")
    encoded = raw.get("signature")
    if not encoded:
        raise MalformedInput("the Signature header has no signature")
    signature = b64decode(encoded, "the signature parameter of the Signature header")
    algorithm = raw.get("algorithm", HS2019).lower()
    if "headers" in raw:
        headers = raw["headers"].lower().split()
        if not headers:
            # Section 2.1.6: it would sign the empty string.
            raise MalformedInput("the headers parameter of the Signature header is empty")
    else:
        headers = [CREATED if algorithm == HS2019 else "date"]
    created = raw.get("created")
    if created is not None and not _INTEGER.fullmatch(created):
        raise MalformedInput(f"created={created!r} is not a Unix timestamp")
    expires = raw.get("expires")
    if expires is not None and not _DECIMAL.fullmatch(expires):
        raise MalformedInput(f"expires={expires!r} is not a Unix timestamp")
    return SignatureParams(
        key_id=key_id,
        algorithm=algorithm,
        headers=headers,
        signature=signature,
        created=None if created is None else int(created),
        expires=None if expires is None else Decimal(expires),
    )


# The exact form Mastodon (and this package) writes, read by one expression.
_MASTODON_FORM = re.compile(
    r'keyId="([^"\\]*)",algorithm="([^"\\]*)",headers="([^"\\]*)",signature="([^"\\]*)"'
)


def _auth_params(value: str) -> dict[str, str]:
    usual = _MASTODON_FORM.fullmatch(value)
    if usual is not None:
        key_id, algorithm, headers, signature = usual.groups()
        return {"keyid": key_id, "algorithm": algorithm, "headers": headers, "signature": signature}
    if _PLAIN_LIST.fullmatch(value):
        return _plain_auth_params(value)
    return _general_auth_params(value)


def _general_auth_params(value: str) -> dict[str, str]:
    text = value.strip()
    if text[: len(_SCHEME_PREFIX)].lower() == _SCHEME_PREFIX:
        text = text[len(_SCHEME_PREFIX) :]
    params: dict[str, str] = {}
    pos, end = 0, len(text)
    while True:
        pos = _skip_whitespace(text, pos)
        if pos == end:
            return params
        if text[pos] == ",":  # an empty list element, which RFC 9110 section 5.6.1 allows
            pos += 1
            continue
        name_match = _TOKEN.match(text, pos)
        if name_match is None:
            raise MalformedInput(
                f"the Signature header has {text[pos]!r} at character {pos} "
                "where a parameter name should be"
            )
        name = name_match.group()
        pos = _skip_whitespace(text, name_match.end())
        if pos == end or text[pos] != "=":
            raise MalformedInput(f"parameter {name!r} of the Signature header has no '='")
        pos = _skip_whitespace(text, pos + 1)
        if text.startswith('"', pos):
            close = text.find('"', pos + 1)
            if close != -1 and "\\" not in text[pos:close]:
                # The usual case, and the quickest: a quoted value with no escapes.
                param_value, pos = text[pos + 1 : close], close + 1
            else:
                quoted = _QUOTED.match(text, pos)
                if quoted is None:
                    raise MalformedInput(
                        f"parameter {name!r} of the Signature header has an unclosed quoted value"
                    )
                param_value, pos = _QUOTED_PAIR.sub(r"\1", quoted.group(1)), quoted.end()
        else:
            token = _TOKEN.match(text, pos)
            if token is None:
                raise MalformedInput(f"parameter {name!r} of the Signature header has no value")
            param_value, pos = token.group(), token.end()
        pos = _skip_whitespace(text, pos)
        if pos < end and text[pos] != ",":
            raise MalformedInput(
                f"the Signature header has {text[pos]!r} at character {pos} "
                f"after parameter {name!r}, where a comma should be"
            )
        # Section 2.2: unknown parameters are ignored; a known one twice is refused.
        # Parameter names are case-insensitive, as for any auth-param (RFC 9110 11.2).
        key = name.lower()
        if key in _KNOWN_PARAMS:
            if key in params:
                raise MalformedInput(f"the Signature header has parameter {name!r} twice")
            params[key] = param_value


def _plain_auth_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, raw in _PLAIN_PAIR.findall(value):
        key = name.lower()
        if key in _KNOWN_PARAMS:
            if key in params:
                raise MalformedInput(f"the Signature header has parameter {name!r} twice")
            params[key] = raw[1:-1] if raw.startswith('"') else raw
    return params


def _skip_whitespace(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return pos if match is None else match.end()


def format_signature_header(
    key_id: str,
    algorithm: str,
    headers: Sequence[str],
    signature: bytes,
    created: int | None = None,
    expires: int | Decimal | None = None,
) -> str:
    """A ``Signature`` header value, parameters in the order Mastodon writes them."""
    escaped = key_id.replace("\\", "\\\\").replace('"', '\\"')
    parts = [f'keyId="{escaped}"', f'algorithm="{algorithm}"']
    if created is not None:
        parts.append(f"created={created}")
    if expires is not None:
        parts.append(f"expires={expires}")
    parts.append(f'headers="{" ".join(headers)}"')
    parts.append(f'signature="{b64encode(signature)}"')
    return ",".join(parts)


# --- The signing string ---------------------------------------------------------------


def signing_string(
    method: str,
    path_with_query: str,
    headers: Mapping[str, str],
    signed: Sequence[str],
    created: int | None = None,
    expires: int | Decimal | None = None,
) -> str:
    """The text a signature covers (draft-cavage-12, section 2.3).

    ``headers`` is looked up case-insensitively; several values of one header are
    joined with ", ". A signed header that the request lacks is ``MalformedInput``.
    """
    lines = []
    for name in signed:
        name = name.lower()
        if name == REQUEST_TARGET:
            value = f"{method.lower()} {path_with_query}"
        elif name == CREATED:
            if created is None:
                raise MalformedInput("(created) is signed but the signature has no created")
            value = str(created)
        elif name == EXPIRES:
            if expires is None:
                raise MalformedInput("(expires) is signed but the signature has no expires")
            value = str(expires)
        else:
            values = _header_values(headers, name)
            if not values:
                raise MalformedInput(f"the signed header {name!r} is missing from the request")
            value = values[0].strip() if len(values) == 1 else ", ".join(v.strip() for v in values)
            if "\n" in value or "\r" in value:
                # A line break would let one header pass for several in the signed text.
                raise MalformedInput(f"the signed header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


class LoweredHeaders(dict[str, str]):
    """Header names lower-cased and repeated fields joined with ", " (RFC 9110, 5.3):
    made once per verification, so that each of the checks is a dictionary lookup."""


def lowered_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> LoweredHeaders:
    """``headers`` (a mapping, or name and value pairs with repeats) made lookup-ready."""
    if isinstance(headers, LoweredHeaders):
        return headers
    lowered = LoweredHeaders()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in pairs:
        name = key.lower()
        previous = lowered.get(name)
        lowered[name] = value.strip() if previous is None else f"{previous}, {value.strip()}"
    return lowered


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    if isinstance(headers, LoweredHeaders):
        value = headers.get(name)
        return [] if value is None else [value]
    # items() rather than a lookup: a plain dict is case-sensitive, and Starlette's
    # Headers.items() yields every occurrence where its lookup returns only the first.
    return [value for key, value in headers.items() if key.lower() == name]


# --- Body digests ---------------------------------------------------------------------


def verify_body_digest(headers: Mapping[str, str], body: bytes) -> None:
    """Check ``Digest`` and/or ``Content-Digest`` against the body; every one present.

    ``Digest`` must offer SHA-256, the only algorithm Mastodon accepts there;
    ``Content-Digest`` must offer sha-256 or sha-512. Every known algorithm offered is
    checked. A mismatch is ``NotAuthorized`` naming the header.
    """
    digest = _header_values(headers, "digest")
    content_digest = _header_values(headers, "content-digest")
    if digest == [sha256_digest_header(body)] and not content_digest:
        return  # exactly what Mastodon sends, and it matches
    if not digest and not content_digest:
        raise NotAuthorized("the request has neither a Digest nor a Content-Digest header")
    if digest:
        entries = parse_digest(", ".join(digest))
        _check_digests("Digest", entries, body, required=("sha-256",))
    if content_digest:
        entries = parse_content_digest(", ".join(content_digest))
        _check_digests("Content-Digest", entries, body, required=("sha-256", "sha-512"))


def _check_digests(
    header: str, entries: list[tuple[str, bytes | None]], body: bytes, required: tuple[str, ...]
) -> None:
    offered = [algorithm for algorithm, _ in entries]
    if not any(algorithm in required for algorithm in offered):
        raise NotAuthorized(
            f"the {header} header offers {', '.join(offered) or 'nothing'}; "
            f"{' or '.join(required)} is required"
        )
    mismatch = find_mismatch(entries, body)
    if mismatch is not None:
        raise NotAuthorized(
            f"the {header} header does not match the body: {mismatch.algorithm} of the body "
            f"is {b64encode(mismatch.computed)}, the header says {b64encode(mismatch.given)}"
        )


# --- Signing --------------------------------------------------------------------------


def sign_string(text: str, private_key: PrivateKey) -> bytes:
    """Sign a signing string: RSASSA-PKCS1-v1_5 with SHA-256 for RSA (what Mastodon
    uses for both rsa-sha256 and hs2019), plain Ed25519 for Ed25519 (RFC 8032)."""
    data = text.encode("utf-8")
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, _PKCS1V15, _SHA256)
    return private_key.sign(data)


def sign_request(
    method: str,
    url: str | httpx.URL,
    headers: Mapping[str, str],
    body: bytes,
    key_id: str,
    private_key: PrivateKey,
    now: datetime,
) -> dict[str, str]:
    """The headers to add to a request so that Mastodon accepts it as signed.

    Signs ``(request-target) host date`` and, for a POST (or any request with a body),
    ``digest`` too, as Mastodon's ``Request`` does. The request target keeps its query
    string, as current Mastodon signs it. RSA keys sign as ``rsa-sha256``; Ed25519 keys
    as ``hs2019``, the name section 2.1.3 reserves for algorithms read from the key.
    """
    target = httpx.URL(url) if isinstance(url, str) else url
    hosts = _header_values(headers, "host")
    added = {"Host": hosts[0] if hosts else target.netloc.decode("ascii"), "Date": _http_date(now)}
    signed = [REQUEST_TARGET, "host", "date"]
    if method.upper() in _BODY_METHODS or body:
        added["Digest"] = sha256_digest_header(body)
        signed.append("digest")
    merged = {key.lower(): value for key, value in [*headers.items(), *added.items()]}
    text = signing_string(method, target.raw_path.decode("ascii"), merged, signed)
    algorithm = RSA_SHA256 if isinstance(private_key, rsa.RSAPrivateKey) else HS2019
    signature = sign_string(text, private_key)
    added["Signature"] = format_signature_header(key_id, algorithm, signed, signature)
    return added


class SignatureAuth(httpx.Auth):
    """Signs every request an ``httpx`` client sends, as ``key_id``."""

    # httpx reads the body before auth_flow runs, so the Digest covers all of it.
    requires_request_body = True

    def __init__(self, key_id: str, private_key: PrivateKey, clock: Clock) -> None:
        self._key_id = key_id
        self._private_key = private_key
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        added = sign_request(
            request.method,
            request.url,
            request.headers,
            request.content,
            self._key_id,
            self._private_key,
            self._clock.now(),
        )
        request.headers.update(added)
        yield request

    def __repr__(self) -> str:
        return f"SignatureAuth({self._key_id!r})"


# --- Verifying ------------------------------------------------------------------------


def verify_signature(params: SignatureParams, text: str, public_key: PublicKey) -> bool:
    """Whether ``params.signature`` is ``public_key``'s signature of ``text``.

    Cryptography only: no policy. An RSA key means RSASSA-PKCS1-v1_5 with SHA-256 for
    rsa-sha256 and hs2019 alike (Mastodon never uses the PSS that section E.2 suggests);
    an Ed25519 key is accepted only under hs2019, since section 2.1.3 makes
    ``rsa-sha256`` with an EdDSA key an error.
    """
    if params.algorithm not in SUPPORTED_ALGORITHMS:
        raise NotAuthorized(_unsupported_algorithm(params.algorithm))
    data = text.encode("utf-8")
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(params.signature, data, _PKCS1V15, _SHA256)
            return True
        if params.algorithm == HS2019:
            public_key.verify(params.signature, data)
            return True
    except InvalidSignature:
        return False
    return False


def check_policy(
    params: SignatureParams, method: str, headers: Mapping[str, str], now: datetime
) -> None:
    """Refuse a signature that Mastodon would refuse, before any key is fetched.

    What must be signed: ``(request-target)``; ``date`` or ``(created)``; ``host`` on a
    GET or HEAD; ``digest`` (or ``content-digest``) on a POST, PUT or PATCH. How long it
    holds: see
    :data:`CLOCK_SKEW_MARGIN` and its neighbours. Policy breaches are ``NotAuthorized``;
    a Date that cannot be read is ``MalformedInput``.
    """
    _require_aware(now)
    signed = params.headers
    verb = method.upper()
    if params.algorithm not in SUPPORTED_ALGORITHMS:
        raise NotAuthorized(_unsupported_algorithm(params.algorithm))
    if params.algorithm == RSA_SHA256 and (CREATED in signed or EXPIRES in signed):
        # Section 2.3, items 2 and 3; Mastodon refuses it too.
        raise NotAuthorized("(created) and (expires) cannot be signed with rsa-sha256; use hs2019")
    if REQUEST_TARGET not in signed:
        raise NotAuthorized(
            "the signature must cover (request-target), or it could be replayed at another URL"
        )
    if "date" not in signed and CREATED not in signed:
        raise NotAuthorized("the signature must cover the Date header or (created)")
    if verb in _HOST_METHODS and "host" not in signed:
        raise NotAuthorized(f"a signed {verb} must cover the Host header")
    if verb in _BODY_METHODS and "digest" not in signed and "content-digest" not in signed:
        raise NotAuthorized(
            f"a signed {verb} must cover the Digest (or Content-Digest) header, "
            "or its body could be swapped"
        )
    _check_time_window(params, headers, now)


def _check_time_window(params: SignatureParams, headers: Mapping[str, str], now: datetime) -> None:
    # Every signed creation time is checked. Mastodon reads an hs2019 `created` even
    # when it is not signed, and then ignores the signed Date: that would let anyone
    # refresh an old signature by adding created=now, so only signed times count here.
    # An `expires` extends validity only when signed, for the same reason; one in the
    # past is refused signed or not (section 2.1.5).
    expires = None
    if params.expires is not None:
        expires = _from_timestamp(params.expires, "expires")
        if now > expires + CLOCK_SKEW_MARGIN:
            raise NotAuthorized(f"the signature expired at {expires:%Y-%m-%d %H:%M:%S} UTC")
    if EXPIRES in params.headers and expires is None:
        raise MalformedInput("(expires) is signed but the signature has no expires")
    signed_expires = expires if EXPIRES in params.headers else None
    if CREATED in params.headers:
        if params.created is None:
            raise MalformedInput("(created) is signed but the signature has no created")
        _check_age("(created)", _from_timestamp(params.created, "created"), signed_expires, now)
    if "date" in params.headers:
        values = _header_values(headers, "date")
        if not values:
            raise MalformedInput("the Date header is signed but missing from the request")
        _check_age("the Date header", _parse_http_date(", ".join(values)), signed_expires, now)


def _check_age(what: str, created: datetime, expires: datetime | None, now: datetime) -> None:
    if created > now + CLOCK_SKEW_MARGIN:
        raise NotAuthorized(
            f"{what} ({created:%Y-%m-%d %H:%M:%S} UTC) is more than "
            f"{_hours(CLOCK_SKEW_MARGIN)} ahead of our clock "
            f"({now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC); check the sending server's clock"
        )
    valid_until = min(expires or created + DEFAULT_VALIDITY, created + EXPIRATION_WINDOW_LIMIT)
    if now > valid_until + CLOCK_SKEW_MARGIN:
        raise NotAuthorized(
            f"the signature is too old: {what} is {created:%Y-%m-%d %H:%M:%S} UTC and a "
            f"signature holds {int(DEFAULT_VALIDITY.total_seconds()) // 60} minutes (or until "
            f"a signed expires, at most {_hours(EXPIRATION_WINDOW_LIMIT)}) plus "
            f"{_hours(CLOCK_SKEW_MARGIN)} of clock skew; sign each delivery attempt afresh"
        )


async def verify_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    key_lookup: KeyLookup,
    refetch: KeyRefetch | None = None,
) -> VerifiedSignature:
    """Verify a request's draft-cavage signature, or raise saying why not.

    ``path`` is the path as it came on the request line (still percent-encoded) and
    ``query`` the query string without ``?``. ``key_lookup`` gives the key for a
    ``keyId``; what it raises passes through. When the signature does not match and
    ``refetch`` is given, it is called once (the peer may have rotated its key): a
    different key it returns is tried; ``None`` or the same key means failure.
    """
    headers = lowered_headers(headers)
    values = _header_values(headers, "signature")
    if not values:
        raise NotAuthorized("the request is not signed: it has no Signature header")
    params = parse_signature_header(", ".join(values))
    check_policy(params, method, headers, now)
    covers_body = "digest" in params.headers or "content-digest" in params.headers
    if body and not covers_body:
        raise NotAuthorized("the request has a body but its signature covers no digest of it")
    if covers_body:
        verify_body_digest(headers, body)
    # Built before any key is fetched, so that a request missing a signed header costs
    # no fetch. Mastodon tries the target with its query string, then without: older
    # Mastodon versions signed the path alone.
    query = query.removeprefix("?")
    targets = [f"{path}?{query}", path] if query else [path]
    candidates = []
    for target in targets:
        text = signing_string(
            method, target, headers, params.headers, params.created, params.expires
        )
        if text not in candidates:
            candidates.append(text)
    key = await key_lookup(params.key_id)
    if _any_matches(params, candidates, key):
        return VerifiedSignature(params.key_id, params.algorithm, params.headers)
    if refetch is not None:
        fresh = await refetch(params.key_id)
        if fresh is None:
            raise NotAuthorized(
                f"{_mismatch(params, key, candidates)}; fetching the key again returned none"
            )
        if fresh != key:
            if _any_matches(params, candidates, fresh):
                return VerifiedSignature(params.key_id, params.algorithm, params.headers)
            raise NotAuthorized(f"{_mismatch(params, fresh, candidates)} (a freshly fetched key)")
    raise NotAuthorized(_mismatch(params, key, candidates))


def _any_matches(params: SignatureParams, candidates: list[str], key: PublicKey) -> bool:
    return any(verify_signature(params, text, key) for text in candidates)


def _mismatch(params: SignatureParams, key: PublicKey, candidates: list[str]) -> str:
    kind = f"RSA-{key.key_size}" if isinstance(key, rsa.RSAPublicKey) else "Ed25519"
    tried = " (also tried without the query string)" if len(candidates) > 1 else ""
    return (
        f"signature does not match the {kind} key {params.key_id} under {params.algorithm}; "
        f"we checked it against {candidates[0]!r}{tried}"
    )


# --- Small helpers --------------------------------------------------------------------


def _http_date(moment: datetime) -> str:
    # IMF-fixdate (RFC 9110 section 5.6.7), e.g. "Sun, 05 Jan 2014 21:31:40 GMT".
    _require_aware(moment)
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_IMF_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)


def _parse_http_date(value: str) -> datetime:
    # IMF-fixdate, the form every current server sends, is read directly; the obsolete
    # forms RFC 9110 still asks recipients to accept go through the email parser.
    fixdate = _IMF_FIXDATE.fullmatch(value)
    if fixdate is not None:
        day, month, year, hour, minute, second = fixdate.groups()
        try:
            return datetime(
                int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC
            )
        except ValueError as exc:
            raise MalformedInput(f"the Date header {value!r} is not an HTTP date: {exc}") from exc
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise MalformedInput(
            f"the Date header {value!r} is not an HTTP date "
            "(expected the form 'Sun, 05 Jan 2014 21:31:40 GMT')"
        ) from exc
    # An HTTP date is always GMT (RFC 9110 section 5.6.7), even with no zone written.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _from_timestamp(value: int | Decimal, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise MalformedInput(f"{name}={value} is not a plausible Unix timestamp") from exc


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got naive {moment.isoformat()}")


def _hours(span: timedelta) -> str:
    hours = int(span.total_seconds()) // 3600
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


def _unsupported_algorithm(algorithm: str) -> str:
    return f"unsupported signature algorithm {algorithm!r}: only rsa-sha256 and hs2019 are accepted"
