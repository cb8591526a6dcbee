"""Who the client is, when a reverse proxy stands between it and the node.

A proxy connects to the node itself and names the client in ``X-Forwarded-For`` (and
the scheme in ``X-Forwarded-Proto``). Those headers are believed only from the
addresses in the ``trusted_proxies`` setting: from any other peer they are the
client's own words, and the peer's address is the client's. Login limits count by this
address, so a client that could choose it could guess without end.

Each proxy appends the address it received the request from, so the client is the
right-most address that is not a trusted proxy. An entry that is not an address stops
the walk: the node then knows no more than the proxy that sent it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

_SCHEMES = frozenset({"http", "https"})


class TrustedProxies:
    def __init__(self, proxies: Iterable[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(p, strict=False) for p in proxies)
        # One parse per address seen, not per request (bounded: peers may be many).
        self.trusts = functools.lru_cache(maxsize=4096)(self._trusts)

    def _trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def client(self, forwarded_for: str) -> str | None:
        """The client named by a trusted proxy's ``X-Forwarded-For``, or None."""
        found = None
        for entry in reversed(forwarded_for.split(",")):
            try:
                found = str(ipaddress.ip_address(entry.strip()))
            except ValueError:
                break
            if not self.trusts(found):
                return found
        return found


class ProxyHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, trusted: Iterable[str]) -> None:
        self.app = app
        self.proxies = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = scope.get("client")
            if peer and self.proxies.trusts(peer[0]):
                self._forwarded(scope)
        await self.app(scope, receive, send)

    def _forwarded(self, scope: Scope) -> None:
        forwarded_for: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.append(value)
            elif name == b"x-forwarded-proto":
                scheme = value.decode("latin-1").strip().lower()
                if scheme in _SCHEMES:
                    scope["scheme"] = scheme
        if forwarded_for:
            client = self.proxies.client(b",".join(forwarded_for).decode("latin-1"))
            if client is not None:
                scope["client"] = (client, 0)
