"""The address guard of the node's httpx client, kept by aiohttp clients built beside it.

The node has one HTTP client, httpx's, guarded by
:class:`federation.netguard.GuardedTransport`. Two paths send thousands of small
requests, where httpx's own cost per request would be most of the work, and go through
aiohttp instead: deliveries (:mod:`federation.poster`) and documents fetched many at a
time (:mod:`federation.bulkfetch`). Both keep the httpx client's guard with what is here:

- :func:`federation.netguard.client_guard` finds the guard, TLS context, User-Agent and
  connect timeout of a guarded httpx client (None for any other client, which is then
  used as it is);
- :func:`guarded_connector` makes aiohttp's connector: its resolver is the guard's
  (:class:`GuardedResolver`: a name whose addresses are all forbidden is refused,
  allowed addresses only are connected to), and every socket is checked against the
  guard with the address it is about to connect to, whatever produced it;
- :func:`federation.netguard.literal_refusal` judges an address written in a URL, in
  any form a resolver reads (``127.1``, ``2130706433``), as the httpx guard judges it.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import socket
import ssl
from typing import Any

import aiohttp
import httpcore
from aiohttp.abc import AbstractResolver, ResolveResult

from federation.errors import Refused
from federation.netguard import (
    ForbiddenAddress,
    GuardedBackend,
)

__all__ = [
    "GuardRefused",
    "GuardedResolver",
    "guarded_connector",
]


class GuardRefused(OSError, Refused):
    """The guard's refusal, as the OSError that aiohttp expects from resolving and
    connecting (it wraps it in a ClientConnectorError, keeping it as the cause)."""

    def __init__(self, forbidden: ForbiddenAddress) -> None:
        OSError.__init__(self, errno.EACCES, str(forbidden))
        self.reason = self.public = str(forbidden)
        self.forbidden = forbidden


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, answering the guard's allowed addresses only."""

    def __init__(self, guard: GuardedBackend) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await self._guard.allowed_addresses(host, port)
        except ForbiddenAddress as exc:
            raise GuardRefused(exc) from exc
        except httpcore.ConnectError as exc:
            raise OSError(errno.EHOSTUNREACH, str(exc)) from exc
        results: list[ResolveResult] = []
        for address in addresses:
            found = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            if family in (socket.AF_UNSPEC, found):
                results.append(
                    {
                        "hostname": host,
                        "host": str(address),
                        "port": port,
                        "family": found,
                        "proto": 0,
                        "flags": socket.AI_NUMERICHOST,
                    }
                )
        if not results:
            raise OSError(errno.EHOSTUNREACH, f"{host} has no address of family {family!r}")
        return results

    async def close(self) -> None:
        return None


def guarded_connector(
    guard: GuardedBackend, *, ssl_context: ssl.SSLContext | bool, limit: int
) -> aiohttp.TCPConnector:
    """aiohttp's connector through ``guard``: its resolver, and a check of every socket.
    ``limit`` bounds the connections open at once (0: the caller bounds them)."""
    return aiohttp.TCPConnector(
        limit=limit,
        ssl=ssl_context,
        resolver=GuardedResolver(guard),
        socket_factory=functools.partial(_guarded_socket, guard),
    )


def _guarded_socket(guard: GuardedBackend, addr_info: Any) -> socket.socket:
    """Every socket, just before it connects: the address it connects to is checked
    here, whatever produced it (the guard's resolver, or a literal address)."""
    family, type_, proto, _, sockaddr = addr_info
    address = ipaddress.ip_address(sockaddr[0])
    reason = guard.refusal(address)
    if reason is not None:
        raise GuardRefused(ForbiddenAddress(str(address), address, reason))
    return socket.socket(family, type_, proto)
