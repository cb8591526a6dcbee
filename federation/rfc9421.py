"""RFC 9421 HTTP Message Signatures for ActivityPub requests.

From the pure parts to the whole:

- :func:`parse_signature_input`, :func:`parse_signature` and :func:`select_signature`;
- :func:`signature_base` over a :class:`RequestView` (RFC 9421 §2.5);
- :func:`verify_signature` and :func:`create_signature` for ``rsa-v1_5-sha256``,
  ``rsa-pss-sha512`` and ``ed25519`` (§3.3);
- :func:`check_policy`: what an ActivityPub inbox demands beyond the RFC, including a
  ``Content-Digest`` (RFC 9530) that matches the body;
- :func:`verify_request` and :func:`sign_request`, which the inbox and delivery call.

A request signed this way carries a ``Signature-Input`` header; one without it may
still carry a draft-cavage ``Signature`` header, which is another module's business
(RFC 9421 Appendix A: detect by ``Signature-Input``).

The structured fields (RFC 8941) that ``Signature-Input`` and ``Signature`` are made of
are read and written by :mod:`federation.sfv`; ``Content-Digest`` values are made and
read by :mod:`federation.digests`, which the draft-cavage module shares.

Errors: :class:`MalformedInput` (400) for fields that cannot be parsed and components
that cannot be derived from the request; :class:`NotAuthorized` (401) for a signature
that is missing, stale, short of the policy or wrong.
"""

from __future__ import annotations

import re
import string
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias
from urllib.parse import SplitResult, unquote_plus, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from federation.digests import (
    DIGEST_ALGORITHMS,
    b64encode,
    content_digest,
    find_mismatch,
    parse_content_digest,
)
from federation.errors import MalformedInput, NotAuthorized
from federation.keys import PrivateKey, PublicKey
from federation.sfv import (
    BareItem,
    InnerList,
    Item,
    Params,
    Token,
    parse_dictionary,
    serialize_item,
    serialize_params,
    serialize_string,
)

# InnerList, Item, Token, parse_dictionary, DIGEST_ALGORITHMS and content_digest belong to
# federation.sfv and federation.digests; they stay importable from here for existing callers.
__all__ = [
    "ALGORITHMS",
    "CLOCK_SKEW_MARGIN",
    "DEFAULT_COMPONENTS",
    "DIGEST_ALGORITHMS",
    "ED25519",
    "EXPIRATION_WINDOW_LIMIT",
    "RSA_PSS_SHA512",
    "RSA_V1_5_SHA256",
    "Component",
    "Headers",
    "InnerList",
    "Item",
    "KeyLookup",
    "KeyRefetch",
    "RequestView",
    "SignatureInput",
    "SignatureParams",
    "Token",
    "VerifiedSignature",
    "check_policy",
    "content_digest",
    "create_signature",
    "parse_dictionary",
    "parse_signature",
    "parse_signature_input",
    "resolve_algorithm",
    "select_signature",
    "sign_request",
    "signature_base",
    "signature_params_value",
    "verify_content_digest",
    "verify_request",
    "verify_signature",
]

RSA_V1_5_SHA256: Final = "rsa-v1_5-sha256"
RSA_PSS_SHA512: Final = "rsa-pss-sha512"
ED25519: Final = "ed25519"
ALGORITHMS: Final = frozenset({RSA_V1_5_SHA256, RSA_PSS_SHA512, ED25519})

# The window Mastodon applies to signed requests (CLOCK_SKEW_MARGIN and
# EXPIRATION_WINDOW_LIMIT in its signature verification), so that a peer's clock a
# little ahead, or a delivery held in a queue, is still accepted.
CLOCK_SKEW_MARGIN: Final = timedelta(hours=1)
EXPIRATION_WINDOW_LIMIT: Final = timedelta(hours=12)

# What sign_request covers by default, with "content-digest" added for a body.
DEFAULT_COMPONENTS: Final = ("@method", "@target-uri")

KeyLookup: TypeAlias = Callable[[str], Awaitable[PublicKey]]
KeyRefetch: TypeAlias = Callable[[str], Awaitable[PublicKey | None]]
Headers: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]]


# --- Signature-Input and Signature (RFC 9421 §2.3, §4) -----------------------------

# Component parameters RFC 9421 defines that this module does not implement. Refusing
# them by name is safer than deriving a value that merely looks right.
_UNSUPPORTED_COMPONENT_PARAMS: Final = {
    "sf": "strict structured-field serialization",
    "key": "dictionary member selection",
    "bs": "byte-sequence wrapping",
    "tr": "trailer fields",
    "req": "request-response binding (only for responses)",
}


@dataclass(frozen=True, slots=True)
class Component:
    """A component identifier: a lower-case field name or a derived component name,
    with its parameters, such as ``Component("@query-param", (("name", "page"),))``."""

    name: str
    params: Params = ()

    def __str__(self) -> str:
        """The identifier as the signature base and ``Signature-Input`` write it."""
        return serialize_string(self.name) + serialize_params(self.params)

    def _identity(self) -> tuple[str, frozenset[tuple[str, BareItem]]]:
        # §2: parameter order is kept but does not make two identifiers different.
        return self.name, frozenset(self.params)


_SIGNATURE_PARAM_TYPES: Final = {
    "created": int,
    "expires": int,
    "keyid": str,
    "alg": str,
    "nonce": str,
    "tag": str,
}
# The order sign_request writes them in, which is the order RFC 9421 §4.3 uses.
_SIGNATURE_PARAM_ORDER: Final = ("created", "keyid", "alg", "expires", "nonce", "tag")


def _check_signature_params(params: Params, where: str) -> None:
    seen: set[str] = set()
    for key, value in params:
        if key in seen:
            raise MalformedInput(f"{where}: parameter {key!r} appears twice")
        seen.add(key)
        expected = _SIGNATURE_PARAM_TYPES.get(key)
        if expected is int and (type(value) is not int or value < 0):
            raise MalformedInput(
                f"{where}: {key} must be a Unix time in whole seconds, got {value!r}"
            )
        if expected is str and type(value) is not str:
            raise MalformedInput(f"{where}: {key} must be a quoted string, got {value!r}")


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """A signature's metadata (RFC 9421 §2.3) in the order it is written, since that
    order is part of the signed bytes. Parameters outside the registry are kept."""

    items: Params = ()

    def __post_init__(self) -> None:
        _check_signature_params(self.items, "signature parameters")

    @classmethod
    def of(
        cls,
        *,
        created: int | None = None,
        keyid: str | None = None,
        alg: str | None = None,
        expires: int | None = None,
        nonce: str | None = None,
        tag: str | None = None,
    ) -> SignatureParams:
        given = {
            "created": created,
            "keyid": keyid,
            "alg": alg,
            "expires": expires,
            "nonce": nonce,
            "tag": tag,
        }
        return cls(
            tuple(
                (key, value) for key in _SIGNATURE_PARAM_ORDER if (value := given[key]) is not None
            )
        )

    def _get(self, key: str) -> BareItem | None:
        return next((value for name, value in self.items if name == key), None)

    def _int(self, key: str) -> int | None:
        value = self._get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _str(self, key: str) -> str | None:
        value = self._get(key)
        return value if isinstance(value, str) else None

    @property
    def created(self) -> int | None:
        return self._int("created")

    @property
    def expires(self) -> int | None:
        return self._int("expires")

    @property
    def keyid(self) -> str | None:
        return self._str("keyid")

    @property
    def alg(self) -> str | None:
        return self._str("alg")

    @property
    def nonce(self) -> str | None:
        return self._str("nonce")

    @property
    def tag(self) -> str | None:
        return self._str("tag")


@dataclass(frozen=True, slots=True)
class SignatureInput:
    """One member of ``Signature-Input``: a label, what it covers and its metadata."""

    label: str
    components: tuple[Component, ...]
    params: SignatureParams

    def value(self) -> str:
        """The member's value, which is also the ``@signature-params`` value."""
        return signature_params_value(self.components, self.params)


def signature_params_value(components: Iterable[Component], params: SignatureParams) -> str:
    """The ``@signature-params`` value (§2.3): an inner list of the component
    identifiers followed by the signature parameters."""
    return "(" + " ".join(str(c) for c in components) + ")" + serialize_params(params.items)


def parse_signature_input(value: str) -> dict[str, SignatureInput]:
    """Read a ``Signature-Input`` field value: one :class:`SignatureInput` per label."""
    result: dict[str, SignatureInput] = {}
    for label, member in parse_dictionary(value, "Signature-Input").items():
        if not isinstance(member, InnerList):
            raise MalformedInput(
                f"Signature-Input: {label} must be a list of components in parentheses, "
                f'such as {label}=("@method" "@target-uri");created=...'
            )
        components: list[Component] = []
        for item in member.items:
            if not isinstance(item.value, str) or isinstance(item.value, Token):
                raise MalformedInput(
                    f"Signature-Input: {label} lists {serialize_item(item)}, but component "
                    'names must be quoted strings, such as "@method"'
                )
            components.append(Component(item.value, item.params))
        _check_signature_params(member.params, f"Signature-Input {label}")
        result[label] = SignatureInput(label, tuple(components), SignatureParams(member.params))
    return result


def parse_signature(value: str) -> dict[str, bytes]:
    """Read a ``Signature`` field value: the signature bytes per label."""
    result: dict[str, bytes] = {}
    for label, member in parse_dictionary(value, "Signature").items():
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise MalformedInput(
                f"Signature: {label} must be a byte sequence, such as {label}=:base64:"
            )
        result[label] = member.value
    return result


def select_signature(
    request: RequestView, label: str | None = None
) -> tuple[SignatureInput, bytes]:
    """The signature labelled ``label``, or the first one, with its bytes."""
    input_value = request.field_value("signature-input")
    signature_value = request.field_value("signature")
    if input_value is None:
        raise NotAuthorized("the request has no Signature-Input header (RFC 9421)")
    if signature_value is None:
        raise NotAuthorized("the request has a Signature-Input header but no Signature header")
    inputs = parse_signature_input(input_value)
    signatures = parse_signature(signature_value)
    if set(inputs) != set(signatures):
        raise MalformedInput(
            f"Signature-Input has labels {sorted(inputs)} but Signature has "
            f"{sorted(signatures)}: every label must be in both (RFC 9421 §4)"
        )
    if not inputs:
        raise NotAuthorized("Signature-Input and Signature are empty")
    chosen = next(iter(inputs)) if label is None else label
    if chosen not in inputs:
        raise NotAuthorized(f"no signature labelled {chosen!r}; the request has {sorted(inputs)}")
    return inputs[chosen], signatures[chosen]


# --- The signature base (RFC 9421 §2) --------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestView:
    """What the signature base is built from. ``url`` is the absolute target URI as the
    client sent it (behind a reverse proxy: the public URL, not the backend's).
    ``headers`` is a list of (name, value) pairs, repeats allowed, or any mapping
    (Starlette's and httpx's headers included); names match case-insensitively."""

    method: str
    url: str
    headers: Headers = ()

    def field_value(self, name: str) -> str | None:
        """The field's value for the signature base (§2.1): every line's value, trimmed
        and unfolded, joined with ", "; ``None`` when the field is absent."""
        wanted = name.lower()
        pairs = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        values = [_clean_field_value(name, v) for n, v in pairs if n.lower() == wanted]
        return ", ".join(values) if values else None


_OBS_FOLD = re.compile(r"\r?\n[ \t]+")


def _clean_field_value(name: str, value: str) -> str:
    cleaned = _OBS_FOLD.sub(" ", value).strip(" \t")
    # A line break left in a value would forge extra lines in the signature base.
    if "\r" in cleaned or "\n" in cleaned or "\x00" in cleaned:
        raise MalformedInput(f"header {name} contains a line break or NUL")
    return cleaned


_DERIVED: Final = frozenset(
    {
        "@method",
        "@target-uri",
        "@authority",
        "@scheme",
        "@request-target",
        "@path",
        "@query",
        "@query-param",
    }
)
_FIELD_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def signature_base(
    components: Sequence[Component], params: SignatureParams, request: RequestView
) -> bytes:
    """The bytes that are signed (RFC 9421 §2.5): one ``"identifier": value`` line per
    covered component, in order, then the ``"@signature-params"`` line, with no final
    newline. Raises :class:`MalformedInput` when a component cannot be derived."""
    lines: list[str] = []
    seen: set[tuple[str, frozenset[tuple[str, BareItem]]]] = set()
    for component in components:
        if component._identity() in seen:
            raise MalformedInput(f"component {component} is covered twice")
        seen.add(component._identity())
        lines.append(f"{component}: {_component_value(component, request)}")
    lines.append(f'"@signature-params": {signature_params_value(components, params)}')
    text = "\n".join(lines)
    try:
        # Servers hand header bytes to Python as Latin-1 (ASGI, Starlette), so this gives
        # back the bytes that were sent.
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise MalformedInput(f"a covered component has a character outside Latin-1: {exc}") from exc


def _component_value(component: Component, request: RequestView) -> str:
    name = component.name
    unsupported = [key for key, _ in component.params if key in _UNSUPPORTED_COMPONENT_PARAMS]
    if unsupported:
        key = unsupported[0]
        raise MalformedInput(
            f"component {component}: the ;{key} parameter ({_UNSUPPORTED_COMPONENT_PARAMS[key]}) "
            "is not supported here; sign the plain field instead"
        )
    if name.startswith("@"):
        return _derived_value(component, request)
    if not _FIELD_NAME.fullmatch(name):
        raise MalformedInput(
            f"component {component}: field names must be lower-case HTTP field names "
            "(RFC 9421 §2.1)"
        )
    if component.params:
        raise MalformedInput(f"component {component}: unknown parameter {component.params[0][0]}")
    value = request.field_value(name)
    if value is None:
        raise MalformedInput(f"the signature covers {name!r} but the request has no such header")
    return value


def _derived_value(component: Component, request: RequestView) -> str:
    name = component.name
    if name == "@signature-params":
        raise MalformedInput('"@signature-params" must not be listed among covered components')
    if name == "@status":
        raise MalformedInput('"@status" is for responses and cannot be covered on a request')
    if name not in _DERIVED:
        raise MalformedInput(f"unknown derived component {name!r}")
    if name == "@query-param":
        return _query_param(component, request)
    if component.params:
        raise MalformedInput(f"component {component}: unknown parameter {component.params[0][0]}")
    if name == "@method":
        value = request.method
    elif name == "@target-uri":
        _split(request.url)
        value = request.url
    else:
        parts = _split(request.url)
        if name == "@authority":
            value = _authority(parts, request.url)
        elif name == "@scheme":
            value = parts.scheme.lower()
        elif name == "@path":
            value = parts.path or "/"
        elif name == "@query":
            value = "?" + parts.query
        else:  # @request-target, in origin form
            value = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # §2.2: derived values are printable ASCII and spaces, and do not start or end
    # with whitespace.
    if not value or not all(" " <= char <= "~" for char in value) or value != value.strip(" "):
        raise MalformedInput(f"cannot derive {name}: {value!r} is not printable ASCII")
    return value


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise MalformedInput(f"cannot derive components from {url!r}: {exc}") from exc
    if not parts.scheme or not parts.netloc:
        raise MalformedInput(f"{url!r} is not an absolute URL")
    return parts


def _authority(parts: SplitResult, url: str) -> str:
    # §2.2.3: the host lower-cased, the scheme's default port left out.
    host = parts.hostname
    try:
        port = parts.port
    except ValueError as exc:
        raise MalformedInput(f"cannot derive @authority from {url!r}: {exc}") from exc
    if not host:
        raise MalformedInput(f"cannot derive @authority: {url!r} has no host")
    authority = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        authority += f":{port}"
    return authority


# application/x-www-form-urlencoded leaves these bytes as they are and percent-encodes
# the rest (WHATWG URL §5.2); RFC 9421 §2.2.8 writes a space as %20, not "+".
_FORM_SAFE = frozenset((string.ascii_letters + string.digits + "*-._").encode("ascii"))


def _form_encode(text: str) -> str:
    return "".join(chr(b) if b in _FORM_SAFE else f"%{b:02X}" for b in text.encode("utf-8"))


def _query_param(component: Component, request: RequestView) -> str:
    # §2.2.8: parse the query as HTML forms do (WHATWG URL §5.1: "+" is a space, then
    # percent-decoding as UTF-8), then re-encode names and values the same way.
    wanted = next((v for k, v in component.params if k == "name"), None)
    if not isinstance(wanted, str) or isinstance(wanted, Token) or len(component.params) != 1:
        raise MalformedInput(
            f'component {component}: @query-param takes exactly one parameter, name="..."'
        )
    values: list[str] = []
    for piece in _split(request.url).query.split("&"):
        name, _, value = piece.partition("=")
        if piece and _form_encode(unquote_plus(name)) == wanted:
            values.append(_form_encode(unquote_plus(value)))
    if not values:
        raise MalformedInput(f"the signature covers query parameter {wanted!r}, which is absent")
    if len(values) > 1:
        # One line per value would make the base depend on how the verifier's framework
        # orders repeats; cover "@query" for such URLs.
        raise MalformedInput(
            f"query parameter {wanted!r} appears {len(values)} times; cover @query instead"
        )
    return values[0]


# --- Algorithms (RFC 9421 §3.3) ---------------------------------------------------


def _key_kind(key: PublicKey | PrivateKey) -> str:
    return (
        "an RSA key" if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey) else "an Ed25519 key"
    )


def resolve_algorithm(
    alg: str | None, key: PublicKey | PrivateKey, *, key_id: str = "the key"
) -> str:
    """The algorithm to verify with (§3.2 step 6): the ``alg`` parameter when given,
    which must suit the key, or else the one the key's type implies."""
    is_rsa = isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey)
    if alg is None:
        # An ActivityPub actor publishes its RSA key as a bare publicKeyPem, which names
        # no algorithm; the one algorithm fediverse software uses with those keys is
        # RSASSA-PKCS1-v1_5 with SHA-256 (draft-cavage's "rsa-sha256"). RSA-PSS is never
        # guessed: a PSS signer has to say so with alg, so that a PKCS#1 v1.5 signature
        # is not also accepted for a key meant for PSS (§7.3.6). An Ed25519 key has
        # exactly one RFC 9421 algorithm.
        return RSA_V1_5_SHA256 if is_rsa else ED25519
    if alg not in ALGORITHMS:
        raise NotAuthorized(
            f"signature algorithm {alg!r} is not supported; use one of {sorted(ALGORITHMS)}"
        )
    if (alg != ED25519) != is_rsa:
        needed = "an Ed25519 key" if alg == ED25519 else "an RSA key"
        raise NotAuthorized(f"alg {alg!r} needs {needed}, but {key_id} is {_key_kind(key)}")
    return alg


_PSS_SHA512: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)


def verify_signature(base: bytes, signature: bytes, key: PublicKey, algorithm: str) -> None:
    """Check ``signature`` over ``base``; raise :class:`NotAuthorized` if it is wrong."""
    try:
        if algorithm == ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, base)
        elif algorithm == RSA_V1_5_SHA256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, base, padding.PKCS1v15(), hashes.SHA256())
        elif algorithm == RSA_PSS_SHA512 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, base, _PSS_SHA512, hashes.SHA512())
        else:
            raise NotAuthorized(f"cannot verify {algorithm!r} with {_key_kind(key)}")
    except InvalidSignature as exc:
        raise NotAuthorized(f"the {algorithm} signature does not match the request") from exc


def create_signature(base: bytes, key: PrivateKey, algorithm: str) -> bytes:
    """Sign ``base`` with ``key`` (the counterpart of :func:`verify_signature`)."""
    if algorithm == ED25519 and isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(base)
    if algorithm == RSA_V1_5_SHA256 and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(base, padding.PKCS1v15(), hashes.SHA256())
    if algorithm == RSA_PSS_SHA512 and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(base, _PSS_SHA512, hashes.SHA512())
    raise ValueError(f"cannot sign {algorithm!r} with {_key_kind(key)}")


# --- Content-Digest (RFC 9530) ----------------------------------------------------


def verify_content_digest(value: str, body: bytes) -> None:
    """Check a ``Content-Digest`` value against the body received: every sha-256 and
    sha-512 digest in it must match, and there must be at least one."""
    entries = parse_content_digest(value)
    mismatch = find_mismatch(entries, body)
    if mismatch is not None:
        raise NotAuthorized(
            f"Content-Digest {mismatch.algorithm} does not match the {len(body)}-byte body "
            "received: was the body changed after it was digested?"
        )
    if all(digest is None for _, digest in entries):
        found = ", ".join(algorithm for algorithm, _ in entries) or "nothing"
        raise NotAuthorized(f"Content-Digest has no sha-256 or sha-512 digest (found {found})")


# --- ActivityPub policy ------------------------------------------------------------


def _unix_time(moment: datetime) -> float:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {moment.isoformat()}")
    return moment.timestamp()


def _duration(seconds: float) -> str:
    minutes = int(seconds) // 60
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{int(seconds)} s"


def check_policy(
    signature: SignatureInput, request: RequestView, body: bytes | None, now: datetime
) -> None:
    """What an ActivityPub inbox requires of an RFC 9421 signature, beyond the RFC:

    - it covers ``@method`` and the target: ``@target-uri``, or ``@authority`` and
      ``@path`` (and ``@query`` when the URL has a query);
    - it names its key (``keyid``) and, if it names an algorithm, a supported one;
    - ``created`` is present, at most :data:`CLOCK_SKEW_MARGIN` ahead and at most
      :data:`EXPIRATION_WINDOW_LIMIT` old; ``expires``, when present, is still ahead;
    - a request with a body covers ``content-digest``, and a covered Content-Digest
      matches the body (sha-256 or sha-512).

    Run before any key is fetched: none of this needs the key.
    """
    label = signature.label
    covered = {c.name for c in signature.components if not c.params}
    if "@method" not in covered:
        raise NotAuthorized(f'signature {label!r} must cover "@method"')
    if "@target-uri" not in covered:
        needed = ["@authority", "@path"] + (["@query"] if _split(request.url).query else [])
        missing = [name for name in needed if name not in covered]
        if missing:
            raise NotAuthorized(
                f'signature {label!r} must cover "@target-uri", or '
                + " and ".join(f'"{name}"' for name in needed)
                + f"; it lacks {', '.join(missing)}"
            )
    params = signature.params
    if params.keyid is None:
        raise NotAuthorized(f"signature {label!r} has no keyid parameter naming its key")
    if params.alg is not None and params.alg not in ALGORITHMS:
        raise NotAuthorized(
            f"signature {label!r} uses alg {params.alg!r}, which is not supported; "
            f"use one of {sorted(ALGORITHMS)}"
        )
    _check_times(label, params, _unix_time(now))
    has_body = bool(body)
    if has_body and "content-digest" not in covered:
        raise NotAuthorized(
            f'signature {label!r} must cover "content-digest" on a request with a body '
            "(a sha-256 or sha-512 Content-Digest, RFC 9530)"
        )
    if "content-digest" in covered:
        value = request.field_value("content-digest")
        if value is None:
            raise NotAuthorized(f"signature {label!r} covers content-digest, which is absent")
        verify_content_digest(value, body or b"")


def _check_times(label: str, params: SignatureParams, now: float) -> None:
    created = params.created
    if created is None:
        raise NotAuthorized(f"signature {label!r} has no created parameter; it is required")
    if created - now > CLOCK_SKEW_MARGIN.total_seconds():
        raise NotAuthorized(
            f"signature {label!r} was created {_duration(created - now)} in the future "
            f"(created={created}, our time {int(now)}): check the sending server's clock"
        )
    if now - created > EXPIRATION_WINDOW_LIMIT.total_seconds():
        raise NotAuthorized(
            f"signature {label!r} was created {_duration(now - created)} ago "
            f"(created={created}, our time {int(now)}), more than "
            f"{_duration(EXPIRATION_WINDOW_LIMIT.total_seconds())}: "
            "sign each delivery attempt afresh"
        )
    expires = params.expires
    if expires is not None and expires < created:
        raise NotAuthorized(f"signature {label!r} expires ({expires}) before it was created")
    if expires is not None and expires <= now:
        raise NotAuthorized(
            f"signature {label!r} expired {_duration(now - expires)} ago "
            f"(expires={expires}, our time {int(now)})"
        )


# --- Verifying and signing requests -------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    key_id: str
    algorithm: str
    label: str
    components: tuple[Component, ...]
    created: datetime


async def verify_request(
    method: str,
    url: str,
    headers: Headers,
    body: bytes | None,
    now: datetime,
    key_lookup: KeyLookup,
    refetch: KeyRefetch | None = None,
    *,
    label: str | None = None,
) -> VerifiedSignature:
    """Verify the RFC 9421 signature of an incoming request under :func:`check_policy`.

    ``url`` is the URL the client requested; ``body`` the bytes received. The key comes
    from ``key_lookup(keyid)``, called only once everything that needs no key has
    passed; its errors propagate. When the signature does not verify and ``refetch``
    is given, it is called once for a fresh key (the peer may have rotated it), as in
    :func:`federation.httpsig.verify_request`. Raises :class:`NotAuthorized` or
    :class:`MalformedInput`, each with a reason for the peer's admin.
    """
    request = RequestView(method, url, headers)
    signature_input, signature = select_signature(request, label)
    check_policy(signature_input, request, body, now)
    base = signature_base(signature_input.components, signature_input.params, request)
    key_id = signature_input.params.keyid
    created = signature_input.params.created
    if key_id is None or created is None:  # check_policy requires both
        raise NotAuthorized("signature lacks keyid or created")
    alg = signature_input.params.alg
    context = f"signature {signature_input.label!r} by {key_id}"
    key = await key_lookup(key_id)
    try:
        algorithm = resolve_algorithm(alg, key, key_id=key_id)
        verify_signature(base, signature, key, algorithm)
    except NotAuthorized as failure:
        fresh = None if refetch is None else await refetch(key_id)
        if fresh is None or fresh == key:
            raise NotAuthorized(
                f"{context}: {failure.reason} (verified as {method} {url})"
            ) from failure
        try:
            algorithm = resolve_algorithm(alg, fresh, key_id=key_id)
            verify_signature(base, signature, fresh, algorithm)
        except NotAuthorized as again:
            raise NotAuthorized(
                f"{context}: {again.reason}, even with a freshly fetched key "
                f"(verified as {method} {url})"
            ) from again
    return VerifiedSignature(
        key_id=key_id,
        algorithm=algorithm,
        label=signature_input.label,
        components=signature_input.components,
        created=datetime.fromtimestamp(created, UTC),
    )


def sign_request(
    method: str,
    url: str,
    headers: Headers,
    body: bytes | None,
    key_id: str,
    private_key: PrivateKey,
    now: datetime,
    components: Sequence[str | Component] | None = None,
    *,
    expires: datetime | None = None,
    digest: str = "sha-256",
    include_alg: bool = True,
) -> dict[str, str]:
    """The headers to add to a request to sign it, under the label ``sig1``:
    ``Content-Digest`` (when there is a body), ``Signature-Input`` and ``Signature``.

    By default the signature covers ``@method``, ``@target-uri`` and, with a body,
    ``content-digest``: what :func:`check_policy` asks for. RSA keys sign with
    ``rsa-v1_5-sha256``, Ed25519 keys with ``ed25519``; ``alg`` is written unless
    ``include_alg`` is false.
    """
    added: dict[str, str] = {}
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
    if body:
        added["Content-Digest"] = content_digest(body, digest)
        pairs = [(n, v) for n, v in pairs if n.lower() != "content-digest"]
        pairs.append(("Content-Digest", added["Content-Digest"]))
    if components is None:
        components = DEFAULT_COMPONENTS + (("content-digest",) if body else ())
    covered = tuple(c if isinstance(c, Component) else Component(c.lower()) for c in components)
    algorithm = RSA_V1_5_SHA256 if isinstance(private_key, rsa.RSAPrivateKey) else ED25519
    params = SignatureParams.of(
        created=int(_unix_time(now)),
        keyid=key_id,
        alg=algorithm if include_alg else None,
        expires=None if expires is None else int(_unix_time(expires)),
    )
    base = signature_base(covered, params, RequestView(method, url, pairs))
    signature = create_signature(base, private_key, algorithm)
    added["Signature-Input"] = f"sig1={signature_params_value(covered, params)}"
    added["Signature"] = f"sig1=:{b64encode(signature)}:"
    return added
