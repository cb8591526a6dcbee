"""The JSON-LD contexts of ``schemas/contexts``, served under ``/ns/``."""

from __future__ import annotations

import functools
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from node.web.responses import error

CONTEXTS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "contexts"


@functools.cache
def _available() -> dict[str, Path]:
    """The context files, listed once. Requests pick among them by exact name: no path
    is ever built from user input."""
    return {p.name: p for p in CONTEXTS_DIR.glob("*.jsonld")}


async def context_file(request: Request) -> Response:
    name = request.path_params["name"]
    path = _available().get(name)
    if path is None:
        return error(404, "not_found", f"no context {name!r}")
    return FileResponse(
        path,
        media_type="application/ld+json",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=86400"},
    )
