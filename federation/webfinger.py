"""WebFinger (RFC 7033) as the fediverse uses it: ``acct:`` resources and JRDs.

A peer finds ``@alice@coop.example`` by
``GET https://coop.example/.well-known/webfinger?resource=acct:alice@coop.example``
and follows the ``self`` link whose type is ActivityStreams to the actor
(https://docs.joinmastodon.org/spec/webfinger/). The ``acct`` URI is RFC 7565.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

from federation.errors import MalformedInput
from federation.mediatypes import AS2, is_activity_content_type

__all__ = [
    "PROFILE_PAGE_REL",
    "WebFingerError",
    "actor_id_from_jrd",
    "build_jrd",
    "parse_acct",
    "webfinger_url",
]

PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
WELL_KNOWN_PATH = "/.well-known/webfinger"

# Longer than any real account; bounding it keeps junk out of logs and lookups.
_MAX_RESOURCE_LENGTH = 255
# RFC 7565 userpart without percent-encoding: unreserved and sub-delims.
# Mastodon's own usernames are a subset ([a-z0-9_] and inner "." or "-"); other
# servers allow more, and we must be able to look their users up.
_USER_RE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=]+")
# A DNS name (letters, digits, inner hyphens; punycode "xn--" labels included),
# with an optional port. IDNA is not handled: a non-ASCII host is refused.
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_HOST_LENGTH = 253


class WebFingerError(MalformedInput, ValueError):
    """A malformed ``acct`` resource or JRD.

    On our endpoint this is the client's fault: RFC 7033 section 4.2 answers a
    malformed ``resource`` with 400 Bad Request.
    """


def parse_acct(resource: str, *, strict: bool = True) -> tuple[str, str]:
    """Split an account into ``(user, host)``, the host lower-cased.

    ``strict`` (the HTTP endpoint) takes only ``acct:user@host[:port]``.
    Otherwise (a lookup typed by a person) ``user@host`` and ``@user@host`` are
    also read, and surrounding whitespace is ignored. The user part keeps its
    case: whether ``Alice`` is ``alice`` is for the account store to say.
    """
    if not isinstance(resource, str):
        raise WebFingerError(f"resource must be a string, got {type(resource).__name__}")
    text = resource if strict else resource.strip()
    if not text:
        raise WebFingerError("resource is empty")
    if len(text) > _MAX_RESOURCE_LENGTH:
        raise WebFingerError(f"resource is longer than {_MAX_RESOURCE_LENGTH} characters")
    if text[:5].lower() == "acct:":
        text = text[5:]
    elif strict:
        raise WebFingerError(f"resource must be an acct: URI, got {_shown(resource)}")
    elif text.startswith("@"):
        text = text[1:]
    if text.count("@") != 1:
        raise WebFingerError(f"account must be user@host, got {_shown(resource)}")
    user, _, host = text.partition("@")
    return _check_user(user), _check_host(host)


def build_jrd(
    subject: str, aliases: Sequence[str], actor_id: str, profile_url: str
) -> dict[str, object]:
    """The JRD our endpoint answers with, shaped like Mastodon's."""
    if isinstance(aliases, str):
        raise TypeError("aliases must be a sequence of URLs, not one string")
    return {
        "subject": subject,
        "aliases": list(aliases),
        "links": [
            {"rel": "self", "type": AS2, "href": actor_id},
            {"rel": PROFILE_PAGE_REL, "type": "text/html", "href": profile_url},
        ],
    }


def webfinger_url(user: str, host: str, scheme: str = "https") -> str:
    """The URL to look ``user@host`` up at, with its query percent-encoded.

    ``host`` may carry a port. ``http`` is for local nodes and tests only.
    """
    if scheme not in ("https", "http"):
        raise WebFingerError(f"scheme must be https or http, got {scheme!r}")
    # Checked here too: a host with "/" or "?" in it would send the request elsewhere.
    user = _check_user(user)
    host = _check_host(host)
    # RFC 7033 section 4.1: "acct:" and "@" are percent-encoded in the query.
    query = urlencode({"resource": f"acct:{user}@{host}"})
    return f"{scheme}://{host}{WELL_KNOWN_PATH}?{query}"


def actor_id_from_jrd(jrd: object) -> str:
    """The actor id in a peer's JRD: the ``self`` link of an ActivityStreams type.

    Links of other types, and ones without an http(s) ``href``, are passed
    over; it is an error only if none is left.
    """
    if not isinstance(jrd, dict):
        raise WebFingerError("JRD is not a JSON object")
    links = jrd.get("links")
    if not isinstance(links, list):
        raise WebFingerError("JRD has no list of links")
    for link in links:
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        link_type = link.get("type")
        href = link.get("href")
        if (
            isinstance(link_type, str)
            and is_activity_content_type(link_type)
            and isinstance(href, str)
            and _is_http_url(href)
        ):
            return href
    raise WebFingerError("JRD has no self link of type application/activity+json")


def _check_user(user: str) -> str:
    if not user:
        raise WebFingerError("account has an empty user part")
    if not _USER_RE.fullmatch(user):
        raise WebFingerError(f"account user part has characters not allowed: {_shown(user)}")
    return user


def _check_host(host: str) -> str:
    if not host:
        raise WebFingerError("account has an empty host part")
    # Before lower(): it maps some non-ASCII letters to ASCII (KELVIN SIGN to "k").
    if not host.isascii():
        raise WebFingerError(f"account host must be ASCII (IDNA is not supported): {_shown(host)}")
    host = host.lower()
    name, colon, port = host.partition(":")
    if len(name) > _MAX_HOST_LENGTH or not all(
        _LABEL_RE.fullmatch(label) for label in name.split(".")
    ):
        raise WebFingerError(f"account host is not a valid host name: {_shown(host)}")
    if colon and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise WebFingerError(f"account host has an invalid port: {_shown(host)}")
    return host


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def _shown(text: str) -> str:
    # Error messages end up in logs and responses: keep what we echo short.
    return repr(text if len(text) <= 80 else text[:77] + "...")
