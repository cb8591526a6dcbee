"""NodeInfo 2.1 documents: what software a node runs, and how big it is.

Discovery is ``/.well-known/nodeinfo``, a JRD-like list of links to the
documents by schema version (http://nodeinfo.diaspora.software/protocol.html).
We serve 2.1 only, as FEP-0151 recommends
(https://codeberg.org/fediverse/fep/src/branch/main/fep/0151/fep-0151.md).
The 2.1 schema is strict (``additionalProperties: false`` everywhere but
``metadata``, closed lists for protocols and services), so the document is
built here in one place and checked against the schema in the tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "NODEINFO_21_CONTENT_TYPE",
    "NODEINFO_21_REL",
    "NODEINFO_21_SCHEMA",
    "nodeinfo_21",
    "well_known_nodeinfo",
]

NODEINFO_21_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_21_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1#"
NODEINFO_21_CONTENT_TYPE = f'application/json; profile="{NODEINFO_21_SCHEMA}"'
NODEINFO_21_PATH = "/nodeinfo/2.1"

# The schema's pattern for software.name is ^[a-z0-9-]+$.
_SOFTWARE_NAME_RE = re.compile(r"[a-z0-9-]+")


def well_known_nodeinfo(base_url: str) -> dict[str, object]:
    """The ``/.well-known/nodeinfo`` document for a node at ``base_url``."""
    return {
        "links": [
            {"rel": NODEINFO_21_REL, "href": base_url.rstrip("/") + NODEINFO_21_PATH},
        ]
    }


def nodeinfo_21(
    *,
    software_name: str,
    software_version: str,
    repository: str,
    homepage: str,
    open_registrations: bool,
    users_total: int | None,
    users_active_month: int | None,
    users_active_halfyear: int | None,
    local_posts: int | None,
    metadata: Mapping[str, object],
) -> dict[str, object]:
    """The NodeInfo 2.1 document.

    A count given as ``None`` is left out: FEP-0151 lets a node hide its usage
    figures that way, and forbids publishing made-up ones. ``metadata`` is
    free-form (FEP-0151 lists the common keys: ``nodeName``,
    ``nodeDescription``, ``staffAccounts``).
    """
    if not _SOFTWARE_NAME_RE.fullmatch(software_name):
        raise ValueError(f"software name must match ^[a-z0-9-]+$, got {software_name!r}")
    users: dict[str, object] = {}
    _put_count(users, "total", users_total)
    _put_count(users, "activeMonth", users_active_month)
    _put_count(users, "activeHalfyear", users_active_halfyear)
    usage: dict[str, object] = {"users": users}
    _put_count(usage, "localPosts", local_posts)
    return {
        "version": "2.1",
        "software": {
            "name": software_name,
            "version": software_version,
            "repository": repository,
            "homepage": homepage,
        },
        "protocols": ["activitypub"],
        # Services are bridges to third-party sites (RSS, Twitter...): none.
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": bool(open_registrations),
        "usage": usage,
        "metadata": dict(metadata),
    }


def _put_count(target: dict[str, object], key: str, value: int | None) -> None:
    if value is None:
        return
    # bool is an int in Python but "true" in JSON, which the schema refuses.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"NodeInfo {key} must be a non-negative integer, got {value!r}")
    target[key] = value
