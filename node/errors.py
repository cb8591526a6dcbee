"""The application's exceptions, and the one function that turns any exception of the
node or of the protocol library into what a user reads (:func:`problem`).

Every exception class of ``node`` descends from :class:`NodeError`, every one of
``federation`` from :class:`federation.errors.FederationError` (``tests/test_layers.py``
checks both). Each carries its HTTP status and a reason for the user.

NodeError
├── BadRequest        400
├── NotAuthenticated  401
├── Forbidden         403
├── NotFound          404
├── Conflict          409
├── TooLarge          413
├── UnsupportedMedia  415
├── Invalid           422  (names the field)
├── TooManyRequests   429  (says when to try again)
├── SchemaOutdated         the database needs `coopnode migrate` (not an HTTP error)
├── ServiceUnavailable 503  (the database writer is stopping)
└── (500, 502)              the rest: settings, a commit that failed, the demo; 502: an audit
                            that could not read what a host published
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.errors import FederationError


class NodeError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, reason: str, *, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field


class BadRequest(NodeError):
    status = 400
    code = "bad_request"


class NotAuthenticated(NodeError):
    status = 401
    code = "not_authenticated"


class Forbidden(NodeError):
    status = 403
    code = "forbidden"


class NotFound(NodeError):
    status = 404
    code = "not_found"


class Conflict(NodeError):
    status = 409
    code = "conflict"


class TooLarge(NodeError):
    status = 413
    code = "too_large"


class UnsupportedMedia(NodeError):
    """Content in a format the resource does not take (an upload that is not an
    image, whatever it was declared as): the request is well formed, its content not."""

    status = 415
    code = "unsupported_media_type"


class Invalid(NodeError):
    status = 422
    code = "invalid"


class TooManyRequests(NodeError):
    status = 429
    code = "too_many_requests"

    def __init__(self, reason: str, *, retry_after: int):
        super().__init__(reason)
        self.retry_after = retry_after


class SchemaOutdated(NodeError):
    code = "schema_outdated"


class ServiceUnavailable(NodeError):
    status = 503
    code = "unavailable"


@dataclass(frozen=True, slots=True)
class Problem:
    """What an exception means to whoever reads it: an HTTP answer's status, code and
    reason, or the command line's message (:attr:`message`).

    ``reason`` is what a peer or a browser may read; ``detail`` is the full reason, for
    the node's own admin (a protocol error's reason may name what only this node should
    know, such as an address its resolver gave)."""

    status: int
    code: str
    reason: str
    detail: str
    field: str | None = None
    retry_after: int | None = None

    @property
    def message(self) -> str:
        """The command line's message: the full reason, after the field it is about."""
        return f"{self.field}: {self.detail}" if self.field else self.detail


def problem(exc: NodeError | FederationError) -> Problem:
    """The one translation of an application or protocol exception, for the web layer's
    answers and the command line's messages alike."""
    if isinstance(exc, NodeError):
        retry_after = getattr(exc, "retry_after", None)
        return Problem(
            status=exc.status,
            code=exc.code,
            reason=exc.reason,
            detail=exc.reason,
            field=exc.field,
            retry_after=max(1, retry_after) if isinstance(retry_after, int) else None,
        )
    return Problem(status=exc.status, code=type(exc).__name__, reason=exc.public, detail=exc.reason)
