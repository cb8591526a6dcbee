"""The digest of an electorate, as ``rosterSnapshot.digest`` publishes it: the host that
fixes the electorate and the auditor who checks it compute it with this one function."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

import rfc8785


def roster_digest(electorate: Iterable[tuple[str, str | None]]) -> str:
    """``sha-256=`` + base64 of SHA-256 over the RFC 8785 form of the sorted
    ``[voter, college]`` pairs."""
    pairs = sorted(electorate, key=lambda p: (p[0], p[1] is not None, p[1] or ""))
    canonical = rfc8785.dumps([[voter, college] for voter, college in pairs])
    return "sha-256=" + base64.b64encode(hashlib.sha256(canonical).digest()).decode("ascii")
