"""The JSON-LD contexts of ``schemas/contexts``, served under ``/ns/``."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from federation.jsonld import CONTEXTS_DIR
from node.web.responses import error


@functools.cache
def _available() -> Mapping[str, bytes]:
    """The context files, read once (a few kilobytes each). Requests pick among them by
    exact name: no path is ever built from user input."""
    return {
        entry.name: entry.read_bytes()
        for entry in CONTEXTS_DIR.iterdir()
        if entry.name.endswith(".jsonld") and entry.is_file()
    }


async def context_file(request: Request) -> Response:
    name = request.path_params["name"]
    content = _available().get(name)
    if content is None:
        return error(404, "not_found", f"no context {name!r}")
    return Response(
        content,
        media_type="application/ld+json",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=86400"},
    )
