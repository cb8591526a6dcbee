"""Body digests, which let a signature cover a request's body: ``Digest`` (RFC 3230), as
draft-cavage signatures (:mod:`federation.httpsig`) cover it, and ``Content-Digest``
(RFC 9530), as RFC 9421 signatures (:mod:`federation.rfc9421`) cover it.

- writing: :func:`sha256_digest_header`, :func:`content_digest`;
- reading: :func:`parse_digest`, :func:`parse_content_digest`, which raise
  :class:`~federation.errors.MalformedInput` for a value they cannot read;
- checking: :func:`find_mismatch` compares the digests read with the body received.

Which algorithms a request must offer, and how a mismatch is reported to the peer, are
left to the signature modules: each words its refusals for the peers that use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from typing import Final, NamedTuple

from federation.errors import MalformedInput
from federation.sfv import Item, parse_dictionary

__all__ = [
    "DIGEST_ALGORITHMS",
    "Mismatch",
    "b64decode",
    "b64encode",
    "content_digest",
    "content_digest_header",
    "find_mismatch",
    "parse_content_digest",
    "parse_digest",
    "sha256_digest_header",
]

# RFC 9530 §5: the two digests that are not deprecated. Others (md5, sha, ...) are
# ignored when present, as §3 allows, and never enough on their own.
DIGEST_ALGORITHMS: Final = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


# --- Writing --------------------------------------------------------------------------


def sha256_digest_header(body: bytes) -> str:
    """``Digest`` (RFC 3230) as Mastodon sends and requires it: ``SHA-256=<base64>``."""
    return "SHA-256=" + b64encode(hashlib.sha256(body).digest())


def content_digest(body: bytes, algorithm: str = "sha-256") -> str:
    """A ``Content-Digest`` value for ``body``, such as ``sha-256=:<base64>:``."""
    return f"{algorithm}=:{b64encode(DIGEST_ALGORITHMS[algorithm](body).digest())}:"


def content_digest_header(body: bytes) -> str:
    """``Content-Digest`` (RFC 9530, which obsoletes RFC 3230): ``sha-256=:<base64>:``."""
    return content_digest(body, "sha-256")


# --- Reading --------------------------------------------------------------------------
# Both readers give (algorithm, digest) pairs in the order written, with the digest left
# as None for an algorithm outside DIGEST_ALGORITHMS: its value need not even be readable.


def parse_digest(value: str) -> list[tuple[str, bytes | None]]:
    """Read a ``Digest`` value (RFC 3230), such as ``SHA-256=<base64>, SHA-512=<base64>``.

    Algorithm names are case-insensitive there, so they come back lower-cased, as RFC 9530
    writes them. A name given twice is kept twice: each digest is checked.
    """
    entries: list[tuple[str, bytes | None]] = []
    for member in value.split(","):
        if member.strip():
            name, sep, encoded = member.strip().partition("=")
            if not sep:
                raise MalformedInput(f"the Digest header entry {member.strip()!r} has no '='")
            algorithm = name.strip().lower()
            digest = None
            if algorithm in DIGEST_ALGORITHMS:
                digest = b64decode(encoded, f"the {algorithm} value of the Digest header")
            entries.append((algorithm, digest))
    return entries


def parse_content_digest(value: str) -> list[tuple[str, bytes | None]]:
    """Read a ``Content-Digest`` value (RFC 9530): a structured-field Dictionary of byte
    sequences, such as ``sha-256=:<base64>:``, read as strictly as :mod:`federation.sfv`
    reads any field. Member parameters carry nothing here and are ignored."""
    entries: list[tuple[str, bytes | None]] = []
    for algorithm, member in parse_dictionary(value, "Content-Digest").items():
        if algorithm not in DIGEST_ALGORITHMS:
            entries.append((algorithm, None))
        elif isinstance(member, Item) and isinstance(member.value, bytes):
            entries.append((algorithm, member.value))
        else:
            raise MalformedInput(f"Content-Digest: {algorithm} must be a byte sequence")
    return entries


# --- Checking -------------------------------------------------------------------------


class Mismatch(NamedTuple):
    """A digest a header gives that is not the body's."""

    algorithm: str
    given: bytes
    computed: bytes


def find_mismatch(digests: Iterable[tuple[str, bytes | None]], body: bytes) -> Mismatch | None:
    """The first digest in ``digests`` (as the readers above give them) that is not the
    digest of ``body``, or ``None`` when every one that can be checked matches.

    ``None`` says nothing about whether any digest was checked: whether the algorithms
    offered are enough is the caller's policy.
    """
    for algorithm, given in digests:
        function = DIGEST_ALGORITHMS.get(algorithm)
        if function is None or given is None:
            continue
        computed = function(body).digest()
        if given != computed:
            return Mismatch(algorithm, given, computed)
    return None


# --- Base64, shared with the signature modules ---------------------------------------


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Strict base64 (whitespace ignored), or :class:`MalformedInput` naming ``what``."""
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedInput(f"{what} is not valid base64") from exc
    if not decoded:
        raise MalformedInput(f"{what} is empty")
    return decoded
