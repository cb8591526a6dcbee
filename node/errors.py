"""The application's exceptions. Each carries its HTTP status and a reason for the user.

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
└── SchemaOutdated         the database needs `coopnode migrate` (not an HTTP error)
"""

from __future__ import annotations


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
