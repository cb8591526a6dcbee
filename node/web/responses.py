"""Response classes and the request helpers every route uses."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from federation.errors import FederationError
from federation.mediatypes import AS2
from node.errors import NodeError, problem
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


def error_answer(exc: NodeError | FederationError) -> JSONResponse:
    """The JSON answer to any application or protocol error (see
    :func:`node.errors.problem`). A peer reads the public part of a protocol error's
    reason; the rest is logged."""
    found = problem(exc)
    if found.detail != found.reason:
        log.info("answered %d: %s", found.status, found.detail)
    response = error(found.status, found.code, found.reason, field=found.field)
    if found.status == 401 and isinstance(exc, NodeError):
        response.headers["WWW-Authenticate"] = "Bearer"
    if found.retry_after is not None:
        response.headers["Retry-After"] = str(found.retry_after)
    return response
