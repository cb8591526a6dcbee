"""WebFinger, host-meta and NodeInfo: how other servers find the co-op."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from federation import nodeinfo, webfinger
from federation.jsonld import COOP_CONTEXT_URL, COOP_NAMESPACE
from federation.mediatypes import JRD
from node import __version__
from node.networks import reading as networks
from node.services import identity
from node.web.responses import error, node_of

# WebFinger is read by browsers' JavaScript on other sites too (RFC 7033, section 5).
CORS = {"Access-Control-Allow-Origin": "*"}
NODE_SOFTWARE = "coopnode"
REPOSITORY = "https://coopnode.org/source"
HOMEPAGE = "https://coopnode.org"
# A URI's scheme and its colon (RFC 3986, section 3.1).
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


async def webfinger_endpoint(request: Request) -> Response:
    node = node_of(request)
    resource = request.query_params.get("resource", "").strip()
    if not resource:
        return _cors(error(400, "bad_request", "the resource parameter is required"))
    username = _username_for(resource, node.settings.domain, node.urls.base)
    if username is None:
        return _cors(
            error(
                400,
                "bad_request",
                f"{resource!r} is not a URI: give acct:user@host or an actor's URL",
            )
        )
    if username == "":
        return _cors(error(404, "not_found", f"{resource!r} is not on this server"))
    if not await node.db.read(lambda conn: identity.actor_exists(conn, username)):
        return _cors(error(404, "not_found", f"no account {username!r} on this server"))
    urls = node.urls
    jrd = webfinger.build_jrd(
        subject=f"acct:{username}@{node.settings.domain}",
        aliases=[urls.actor(username), urls.profile(username)],
        actor_id=urls.actor(username),
        profile_url=urls.profile(username),
    )
    return JSONResponse(jrd, media_type=JRD, headers=CORS)


def _cors(response: Response) -> Response:
    response.headers.update(CORS)
    return response


def _username_for(resource: str, domain: str, base_url: str) -> str | None:
    """The local username a resource names; "" for a well-formed resource this server
    has nothing for; None for a malformed resource.

    RFC 7033 answers a malformed resource with 400 (section 4.2) and a URI the server
    knows nothing about with 404 (section 4.5): ``mailto:``, ``did:`` or another
    server's URL is a well-formed question with no answer here. ``user@host`` without
    its ``acct:`` scheme is read as an account, as the servers people use do."""
    if resource.startswith(("http://", "https://")):
        parts = urlsplit(resource)
        prefix = f"{base_url}/actors/"
        profile_prefix = f"{base_url}/@"
        plain = resource.split("#", 1)[0]
        if not parts.netloc:
            return None
        for start in (prefix, profile_prefix):
            if plain.startswith(start) and "/" not in plain[len(start) :]:
                return plain[len(start) :] or ""
        return ""
    if resource[:5].lower() != "acct:" and _URI_SCHEME.match(resource):
        return ""
    try:
        user, host = webfinger.parse_acct(resource, strict=resource[:5].lower() == "acct:")
    except webfinger.WebFingerError:
        return None
    return user.lower() if host == domain else ""


async def host_meta(request: Request) -> Response:
    """XRD pointing at WebFinger, for servers that look here first (RFC 6415)."""
    base = node_of(request).urls.base
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template="{base}/.well-known/webfinger?resource={{uri}}"/>\n'
        "</XRD>\n"
    )
    return Response(body, media_type="application/xrd+xml", headers=CORS)


async def nodeinfo_links(request: Request) -> Response:
    return JSONResponse(nodeinfo.well_known_nodeinfo(node_of(request).urls.base), headers=CORS)


async def nodeinfo_document(request: Request) -> Response:
    node = node_of(request)
    people = await node.db.read(lambda conn: identity.count_actors(conn, "Person"))
    # The networks hosted here and how many co-ops each has, for whoever looks for one
    # to join.
    hosted = []
    for name in await networks.hosted_names(node):
        _, members = await networks.count_members(node, name)
        hosted.append(
            {
                "name": name,
                "actor": node.urls.actor(name),
                "directory": f"{node.urls.base}/networks/{name}",
                "members": members,
            }
        )
    document = nodeinfo.nodeinfo_21(
        software_name=NODE_SOFTWARE,
        software_version=__version__,
        repository=REPOSITORY,
        homepage=HOMEPAGE,
        open_registrations=False,
        users_total=people,
        users_active_month=people,
        users_active_halfyear=people,
        local_posts=0,
        metadata={
            "nodeName": node.settings.name,
            "coop": {
                "actor": node.urls.actor(node.settings.handle),
                "vocabulary": COOP_CONTEXT_URL,
                "namespace": COOP_NAMESPACE,
                "context": node.urls.context("coop-v1.jsonld"),
            },
            "networks": hosted,
        },
    )
    return JSONResponse(document, media_type=nodeinfo.NODEINFO_21_CONTENT_TYPE, headers=CORS)
