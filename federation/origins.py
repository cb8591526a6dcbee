"""Origins: who answers for a URL.

Two URLs have the same origin when their scheme, host and port agree (RFC 6454,
section 4), the default port of the scheme standing in for an absent one. Two servers on
one host but on different ports are different servers, each with its own actors and
keys: an object on ``https://coop.example:8443/`` is not vouched for by an actor on
``https://coop.example/``. Every check of "is this object its sender's" compares
origins, never bare host names (:func:`federation.inbox.host_of` is for domain policy:
blocks and allow-lists apply to a host whatever its port).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

# The common shape, read without urlsplit (several microseconds a call, and this runs for
# every activity received): scheme, a plain host name, an optional port, then the end or
# a path, query or fragment.
_PLAIN = re.compile(r"(https?)://([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(?=[/?#]|\Z)", re.IGNORECASE)


def ascii_host(host: str) -> str:
    """``host`` lower-cased, without a final dot, an international name as punycode."""
    host = host.lower().rstrip(".")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host  # not a name IDNA can write: matched as it is, by nothing but itself


def origin_of(url: str) -> str:
    """``scheme://host:port`` of an http(s) URL, lower-cased and with the port always
    written; "" when the URL has no usable origin (another scheme, no host, a bad port)."""
    plain = _PLAIN.match(url)
    if plain is not None:
        scheme, host, port = plain.group(1).lower(), plain.group(2).lower(), plain.group(3)
        number = int(port) if port else _DEFAULT_PORTS[scheme]
        if not 0 < number < 65536:
            return ""
        return f"{scheme}://{host}:{number}"
    # User info, IPv6 literals and anything unusual: the standard library decides.
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        explicit = parts.port
    except ValueError:
        return ""
    host = ascii_host(parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host:
        return ""
    number = explicit if explicit is not None else _DEFAULT_PORTS[scheme]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{number}"


def same_origin(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are served by the same server. URLs without an origin are
    never the same as anything, themselves included."""
    # Most often (an activity and its actor) both are written alike up to their path:
    # then one origin is read, not two.
    end = a.find("/", 8)
    if end > 0 and b.startswith(a[: end + 1]):
        return origin_of(a) != ""
    first = origin_of(a)
    return first != "" and first == origin_of(b)
