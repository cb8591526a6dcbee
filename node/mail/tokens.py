"""The tokens in emails' links.

- A verification link carries a random token; only its SHA-256 is kept, with an
  expiry, and a new address or a new link replaces it.
- An unsubscribe link is ``MEMBER.KIND.SIGNATURE``: an HMAC-SHA256 of the member and
  the kind under the member's own secret, which a new address replaces. It never
  expires (a member must be able to stop mail from a year-old message), names one
  member and one kind (or ``all``), and cannot be made for another member.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SIGNATURE_CHARS = 22  # 128 bits of the HMAC, base64url
MAX_TOKEN = 200


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_verify_token() -> tuple[str, str]:
    """A verification token and the hash to keep of it."""
    token = secrets.token_urlsafe(24)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _signature(secret: str, member_id: int, kind: str) -> str:
    mac = hmac.new(secret.encode(), f"{member_id}:{kind}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii")[:SIGNATURE_CHARS]


def unsubscribe_token(secret: str, member_id: int, kind: str) -> str:
    return f"{member_id}.{kind}.{_signature(secret, member_id, kind)}"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    member_id: int
    kind: str
    signature: str

    def valid_under(self, secret: str) -> bool:
        expected = _signature(secret, self.member_id, self.kind)
        return hmac.compare_digest(expected.encode(), self.signature.encode())


def read_unsubscribe(token: str) -> Unsubscribe | None:
    """The parts of an unsubscribe token, or None when it is not one's shape."""
    if len(token) > MAX_TOKEN or not token.isascii():
        return None
    member, _, rest = token.partition(".")
    kind, _, signature = rest.partition(".")
    well_formed = member.isascii() and member.isdigit() and 0 < len(member) <= 12
    if not (well_formed and kind and len(signature) == SIGNATURE_CHARS):
        return None
    return Unsubscribe(int(member), kind, signature)
