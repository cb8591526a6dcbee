"""Response classes and the request helpers every route uses."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from federation.errors import FederationError
from federation.mediatypes import AS2
from node.errors import NodeError
from node.runtime import Node

log = logging.getLogger(__name__)


class ActivityResponse(JSONResponse):
    media_type = AS2


def activity(document: Any, *, status: int = 200) -> ActivityResponse:
    # Vary: Accept, because the same URL answers HTML to browsers; caches must not mix them.
    return ActivityResponse(document, status_code=status, headers={"Vary": "Accept"})


def error(status: int, code: str, reason: str, *, field: str | None = None) -> JSONResponse:
    body: dict[str, str] = {"error": code, "reason": reason}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status)


def node_of(request: Request) -> Node:
    node = request.app.state.node
    assert isinstance(node, Node)
    return node


def node_error(exc: NodeError) -> JSONResponse:
    response = error(exc.status, exc.code, exc.reason, field=exc.field)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):
        response.headers["Retry-After"] = str(max(1, retry_after))
    return response


def federation_error(exc: FederationError) -> JSONResponse:
    """The answer to a peer: the public part of the reason; the rest is logged."""
    if exc.public != exc.reason:
        log.info("answered %d: %s", exc.status, exc.reason)
    return error(exc.status, type(exc).__name__, exc.public)
