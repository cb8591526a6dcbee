"""Slowing down password guessing: login attempts counted per account and per address.

Each argon2 check already costs a fraction of a second; the limit stops a guesser who
would keep trying. After ``max_failures`` failures within ``window`` for one name (or
four times as many from one address, which may be a whole co-op behind one router),
logins for it are refused with 429 until the oldest failure leaves the window. A
success clears the name's count. Counts live in the process's memory: a restart forgets
them, which costs a guesser nothing it could not get by waiting.

An attempt counts as a failure *before* its password is checked, and a success takes
its count back. Checking first and counting after would let a guesser send sixty
guesses at once: all of them would pass the check while the first were still hashing.

An IPv6 address is counted with its whole /64, the least a single host is given: a
guesser would otherwise have billions of fresh addresses. The table is bounded; when it
is full, counts that no longer hold anyone go first, then the least recently used of
those below their limit, and a lockout only when nothing else is left. Otherwise a flood
of random names would push a locked account out and hand its guesser a fresh count.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from federation.clock import Clock
from node.errors import TooManyRequests

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
# Keys kept at most, so that a flood of names costs bounded memory.
MAX_KEYS = 10_000
# Longer names and addresses share a count: a key never holds more than this of them.
MAX_KEY_CHARS = 64

_HOST_BITS = 64  # an IPv6 /64


def address_key(address: str) -> str:
    """What an address is counted as: an IPv4 address as itself (also when written as
    IPv4-mapped IPv6), an IPv6 address as its /64, anything else as it is."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:MAX_KEY_CHARS]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        network = int(parsed) >> _HOST_BITS << _HOST_BITS  # drops any %zone too
        return str(ipaddress.IPv6Network((network, 128 - _HOST_BITS)))
    return str(parsed)


class LoginLimiter:
    def __init__(
        self, clock: Clock, *, max_failures: int = MAX_FAILURES, window: timedelta = WINDOW
    ) -> None:
        self._clock = clock
        self._limits = {"name": max_failures, "address": max_failures * 4}
        self._window = window
        # Least recently failed first: the order in which counts may be forgotten.
        self._failures: OrderedDict[tuple[str, str], deque[datetime]] = OrderedDict()

    def __len__(self) -> int:
        """How many names and addresses are remembered."""
        return len(self._failures)

    def _keys(self, name: str, address: str) -> list[tuple[str, str]]:
        return [("name", name.casefold()[:MAX_KEY_CHARS]), ("address", address_key(address))]

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0] >= self._window:
            failures.popleft()
        return failures

    def attempt(self, name: str, address: str) -> datetime:
        """Count a login attempt as failed, before its password is checked; raise
        :class:`TooManyRequests` instead if this name or address must wait.

        Returns when it was counted, for :meth:`succeeded`. Nothing awaits between the
        check and the count, so concurrent attempts in one event loop are counted one
        after the other."""
        now = self._clock.now()
        keys = self._keys(name, address)
        for key in keys:
            failures = self._recent(key, now)
            if len(failures) >= self._limits[key[0]]:
                wait = failures[0] + self._window - now
                minutes = max(1, math.ceil(wait.total_seconds() / 60))
                raise TooManyRequests(
                    f"too many failed logins for this {key[0]}; try again in {minutes} min",
                    retry_after=math.ceil(wait.total_seconds()),
                )
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
            self._failures.move_to_end(key)
        if len(self._failures) > MAX_KEYS:
            self._make_room(now, keep=keys)
        return now

    def _make_room(self, now: datetime, keep: list[tuple[str, str]]) -> None:
        """Forget counts until an eighth of the table is free again, so that this pass
        over the whole table is paid for by the many attempts before the next one.

        Expired counts go first, then those below their limit, least recently failed
        first; lockouts last, and never the keys just counted (dropping those would let
        a guesser who filled the table with lockouts guess on unhindered)."""
        target = MAX_KEYS - max(1, MAX_KEYS // 8)
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]
        below_limit = [
            key
            for key, failures in self._failures.items()
            if len(failures) < self._limits[key[0]] and key not in keep
        ]
        locked = [
            key
            for key, failures in self._failures.items()
            if len(failures) >= self._limits[key[0]] and key not in keep
        ]
        for key in below_limit + locked:
            if len(self._failures) <= target:
                break
            del self._failures[key]

    def succeeded(self, name: str, address: str, counted_at: datetime) -> None:
        """The password was right: the name's count is cleared, and the address's
        count of this attempt taken back."""
        name_key, counted_address = self._keys(name, address)
        self._failures.pop(name_key, None)
        failures = self._failures.get(counted_address)
        if failures is not None:
            with contextlib.suppress(ValueError):  # already forgotten
                failures.remove(counted_at)
