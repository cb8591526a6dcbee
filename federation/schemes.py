"""Which signature a delivery carries, RFC 9421 with an Ed25519 key or draft-cavage with
an RSA key, and "double knocking" between the two.

An Ed25519 signature costs a fraction of an RSA one (bench/delivery.py), but few servers
verify it yet: Mastodon 4.5 and 4.6 verify RFC 9421 signatures made with RSA keys only,
and Ed25519 ones from 4.7 (Mastodon's FEDERATION.md); most other servers verify
draft-cavage RSA only. The rules:

- A host is tried with RFC 9421 and Ed25519 first only when it said it verifies them
  (:func:`declares_ed25519`): one of its actors lists, in FEP-844e ``implements``, the
  capability :data:`ED25519_CAPABILITY` (the FEP-844e registry's name for it; Mitra and
  tootik publish it), or the coopnode vocabulary (every coopnode verifies RFC 9421).
  An Ed25519 Multikey in ``assertionMethod`` says nothing about HTTP signatures (it may
  serve object proofs only), nor does :data:`RFC9421_CAPABILITY` alone (Mastodon 4.5
  verifies RFC 9421 with RSA keys only).
- Every other host gets draft-cavage RSA first, as Mastodon signs. Fedify tries RFC 9421
  first everywhere, but with RSA keys, which Mastodon 4.5 accepts; an Ed25519 guess
  would be refused by most servers, and some answer 2xx to a request whose signature
  they cannot verify and then drop it (Pleroma's inbox answers 200 to an activity whose
  signature failed): there a wrong guess would lose the delivery, not cost one POST.
- An RFC 9421 try answered 400 or 401 is sent again at once, the same body signed
  draft-cavage RSA (:func:`knocks_again`; "double knocking", as the SocialCG's report
  on HTTP signatures names it:
  https://swicg.github.io/activitypub-http-signature/#how-to-upgrade-supported-versions).
  Any other answer stands: a 5xx says that the server fails, not that it refused the
  signature.
- What a host's answers teach (:func:`lesson`) is remembered for :data:`LEARNED_FOR`,
  so that the next delivery goes straight to the scheme that works, and a host that
  upgrades is tried again after a while.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Any, Final

from federation.jsonld import COOP_CONTEXT_URL

__all__ = [
    "DECLARATION_FRESHNESS",
    "ED25519_CAPABILITY",
    "LEARNED_FOR",
    "RFC9421_CAPABILITY",
    "Scheme",
    "declared_capabilities",
    "declares_ed25519",
    "knocks_again",
    "lesson",
]

# FEP-844e's registry (https://w3id.org/fep/844e): RFC 9421 signatures, and RFC 9421
# signatures with the Ed25519 algorithm.
RFC9421_CAPABILITY: Final = "https://datatracker.ietf.org/doc/html/rfc9421"
ED25519_CAPABILITY: Final = (
    "https://datatracker.ietf.org/doc/html/rfc9421#name-eddsa-using-curve-edwards25"
)

# How long a host's answer is trusted: long enough that a wrong first try costs one
# POST a month, short enough that a host that starts verifying Ed25519 is found.
LEARNED_FOR: Final = timedelta(days=30)
# How long what a host's actors declare is trusted before it is read again: as long as
# an actor document is used without being fetched again (node.peers.ACTOR_FRESHNESS).
DECLARATION_FRESHNESS: Final = timedelta(days=1)

# A document lists a few capabilities; a hostile one is not read past these.
_MAX_ENTRIES = 64


class Scheme(Enum):
    """How a POST is signed."""

    RFC9421_ED25519 = "rfc9421-ed25519"
    CAVAGE_RSA = "cavage-rsa"


def declared_capabilities(document: dict[str, Any]) -> set[str]:
    """The capabilities an actor document declares (FEP-844e ``implements``): on the
    application that generated it (``generator``), as FEP-844e places them, or on the
    actor itself, as coopnode does. Entries are Link objects (``href``, or ``id``) or
    plain URIs; anything else is ignored."""
    found: set[str] = set()
    generator = document.get("generator")
    places = [document, *(generator if isinstance(generator, list) else [generator])]
    for place in places[:_MAX_ENTRIES]:
        if not isinstance(place, dict):
            continue
        entries = place.get("implements")
        for entry in (entries if isinstance(entries, list) else [entries])[:_MAX_ENTRIES]:
            if isinstance(entry, dict):
                entry = entry.get("href", entry.get("id"))
            if isinstance(entry, str):
                found.add(entry)
    return found


def declares_ed25519(document: dict[str, Any]) -> bool:
    """Whether an actor document says that its server verifies RFC 9421 signatures made
    with Ed25519 keys (see the module's description)."""
    capabilities = declared_capabilities(document)
    return ED25519_CAPABILITY in capabilities or COOP_CONTEXT_URL in capabilities


def knocks_again(status: int | None) -> bool:
    """Whether an answer to an RFC 9421 signature calls for the same POST signed
    draft-cavage at once: a 400 or a 401, the answers of a server that could not
    read or verify the signature. No answer, or any other, is not a refusal of it."""
    return status in (400, 401)


def lesson(rfc9421_status: int | None, cavage_status: int | None = None) -> Scheme | None:
    """What a host's answers teach: ``rfc9421_status`` answered an RFC 9421 signature,
    ``cavage_status`` (if the POST was sent again) the same POST signed draft-cavage.

    A 2xx to RFC 9421 teaches RFC 9421; a refusal of it (:func:`knocks_again`) and a 2xx
    to draft-cavage teach draft-cavage. Anything else teaches nothing: a 401 to both is
    the node's key not trusted yet (Mastodon answers 401 while it cannot fetch it), and
    an outage or a refusal of the activity says nothing of signatures."""
    if rfc9421_status is not None and 200 <= rfc9421_status < 300:
        return Scheme.RFC9421_ED25519
    if knocks_again(rfc9421_status) and cavage_status is not None and 200 <= cavage_status < 300:
        return Scheme.CAVAGE_RSA
    return None
