"""The protocol library's exceptions. Each knows the HTTP status it should produce and
carries a reason that a peer's admin can act on. When the reason holds what only this
node should know (an address its resolver gave, a resolver's message), ``public`` is
the part a peer may read, and the reason goes to the node's log.

    FederationError
    ├── MalformedInput          400  a peer sent something we cannot parse or accept
    ├── NotAuthorized           401  signature missing, wrong or stale
    ├── Refused                 403  policy: a blocked domain, a key that is not the actor's
    ├── PayloadTooLarge         413
    ├── UnsupportedMediaType    415
    └── FetchError              502  fetching a remote document failed
        ├── RemoteNotFound           the remote answered 404 or 410
        └── InvalidDocument          the remote answered something unusable
"""

from __future__ import annotations


class FederationError(Exception):
    status = 500

    def __init__(self, reason: str, *, public: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.public = reason if public is None else public


class MalformedInput(FederationError):
    status = 400


class NotAuthorized(FederationError):
    status = 401


class Refused(FederationError):
    status = 403


class PayloadTooLarge(FederationError):
    status = 413


class UnsupportedMediaType(FederationError):
    status = 415


class FetchError(FederationError):
    status = 502


class RemoteNotFound(FetchError):
    pass


class InvalidDocument(FetchError):
    pass


def unreachable_now(exc: BaseException) -> bool:
    """Whether a fetch failed for a reason that may pass (a timeout, a refused
    connection, a server error): worth trying again later, unlike a remote that
    answered 404 or 410, or answered something unusable."""
    return isinstance(exc, FetchError) and not isinstance(exc, RemoteNotFound | InvalidDocument)
