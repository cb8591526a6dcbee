"""Uploading images through the API, and serving them to everyone.

``POST /api/v1/media`` takes the image's raw bytes as the body (not a form), with its
Content-Type and an optional ``?description=`` (alt text). The body is refused with 413
as soon as it is known to be over ``media_max_bytes``: from its Content-Length before
anything is read, otherwise while it is read. What the file is comes from its bytes:
anything but JPEG, PNG, WebP or GIF is refused with 415, whatever it claimed to be.

``GET /media/<key>.<ext>`` serves a stored file. The key is looked up in the table and
the path built from the row, never from the request. The headers keep a file that is
both an image and something else (a polyglot) from being read as anything but an image.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from federation.bodies import read_capped
from node.errors import Invalid, NotFound, TooLarge
from node.services import media as media_service
from node.services.media import KEY_PATTERN, Media
from node.urls import Urls
from node.web.api import authenticate
from node.web.responses import node_of

QUERY_PARAMETERS = frozenset({"description"})
# Stored files never change (a new upload gets a new key): caches may keep them.
CACHE_CONTROL = "public, max-age=31536000, immutable"


def media_document(urls: Urls, item: Media) -> dict[str, Any]:
    return {
        "id": item.key,
        "url": urls.media(item.key, item.extension),
        "media_type": item.media_type,
        "size": item.size,
        "width": item.width,
        "height": item.height,
        "description": item.description,
    }


async def upload(request: Request) -> Response:
    info = await authenticate(request)
    node = node_of(request)
    unknown = sorted(set(request.query_params) - QUERY_PARAMETERS)
    if unknown:
        raise Invalid(
            f"unknown parameter {unknown[0]!r}; send the image as the body", field=unknown[0]
        )
    description = media_service.check_description(request.query_params.get("description"))
    limit = node.settings.media_max_bytes
    data = await read_capped(
        request.stream(),
        declared=request.headers.get("content-length"),
        limit=limit,
        too_large=lambda what: TooLarge(
            media_service.too_large_reason(f"the request {what}", limit), field="image"
        ),
    )
    declared_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    item = await media_service.store(
        node.db,
        node.settings.data_dir,
        data,
        actor_id=info.actor_id if info.actor_id is not None else node.peers.coop_id,
        now=node.clock.now(),
        declared_type=declared_type or None,
        description=description,
        max_bytes=limit,
    )
    document = media_document(node.urls, item)
    return JSONResponse(document, status_code=201, headers={"Location": document["url"]})


async def serve_file(request: Request) -> Response:
    key, dot, extension = request.path_params["name"].rpartition(".")
    if not dot or not KEY_PATTERN.match(key):
        raise NotFound("no such image")
    node = node_of(request)
    item = await node.db.read(lambda conn: media_service.find(conn, key))
    if item is None or item.extension != extension:
        raise NotFound("no such image")
    path = media_service.file_path(node.settings.data_dir, item)
    try:
        stat_result = await asyncio.to_thread(os.stat, path)
    except FileNotFoundError:
        raise NotFound("no such image") from None
    etag = f'"{item.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        # Opened directly, the file may run nothing and load nothing, even if its bytes
        # also parse as a page.
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=item.media_type, headers=headers, stat_result=stat_result)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
