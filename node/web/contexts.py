"""The JSON-LD contexts of ``schemas/contexts``, served under ``/ns/``."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from node.web.responses import error

CONTEXTS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "contexts"


async def context_file(request: Request) -> Response:
    name = request.path_params["name"]
    # Only the files that are there, by exact name: no path is built from user input.
    available = {p.name: p for p in CONTEXTS_DIR.glob("*.jsonld")}
    path = available.get(name)
    if path is None:
        return error(404, "not_found", f"no context {name!r}")
    return FileResponse(
        path,
        media_type="application/ld+json",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=86400"},
    )
