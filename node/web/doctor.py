"""``/doctor/probe/{nonce}``: what ``coopnode doctor`` asks through the public URL.

A nonce the doctor has not just written in this node's database gets a 404 before the
body is read, so the route tells a stranger nothing and takes nothing from one. With a
known nonce, GET says how the request reached the node (its Host, its scheme as the
proxy said it, the client address) and POST counts a body as large as the largest the
node takes, to learn whether the proxy lets it through."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.doctor import probe as doctor_probe
from node.web.responses import error, node_of

_NO_STORE = {"Cache-Control": "no-store"}


async def probe(request: Request) -> Response:
    node = node_of(request)
    if not await doctor_probe.known(node, request.path_params["nonce"]):
        return error(404, "not_found", "no such probe")
    if request.method == "GET":
        client = request.client
        return JSONResponse(
            {
                "node": "coopnode",
                "host": request.headers.get("host"),
                "scheme": request.url.scheme,
                "forwarded_proto": request.headers.get("x-forwarded-proto"),
                "client": client.host if client else None,
            },
            headers=_NO_STORE,
        )
    limit = node.settings.largest_body
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            return error(413, "too_large", f"a probe's body is at most {limit} bytes")
    return JSONResponse({"node": "coopnode", "received": received}, headers=_NO_STORE)
