"""Slowing down password guessing: failed logins counted per account and per address.

Each argon2 check already costs a fraction of a second; the limit stops a guesser who
would keep trying. After ``max_failures`` failures within ``window`` for one name (or
four times as many from one address, which may be a whole co-op behind one router),
logins for it are refused with 429 until the oldest failure leaves the window. A
success clears the name's count. Counts live in the process's memory: a restart forgets
them, which costs a guesser nothing it could not get by waiting.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from datetime import datetime, timedelta

from federation.clock import Clock
from node.errors import TooManyRequests

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
# Keys kept at most (oldest forgotten first), so that a flood of names costs bounded memory.
MAX_KEYS = 10_000


class LoginLimiter:
    def __init__(
        self, clock: Clock, *, max_failures: int = MAX_FAILURES, window: timedelta = WINDOW
    ) -> None:
        self._clock = clock
        self._limits = {"name": max_failures, "address": max_failures * 4}
        self._window = window
        self._failures: defaultdict[tuple[str, str], deque[datetime]] = defaultdict(deque)

    def _keys(self, name: str, address: str) -> list[tuple[str, str]]:
        return [("name", name.casefold()), ("address", address)]

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        failures = self._failures[key]
        while failures and now - failures[0] >= self._window:
            failures.popleft()
        return failures

    def check(self, name: str, address: str) -> None:
        """Raise :class:`TooManyRequests` if this name or address must wait."""
        now = self._clock.now()
        for key in self._keys(name, address):
            failures = self._recent(key, now)
            if len(failures) >= self._limits[key[0]]:
                wait = failures[0] + self._window - now
                minutes = max(1, math.ceil(wait.total_seconds() / 60))
                raise TooManyRequests(
                    f"too many failed logins for this {key[0]}; try again in {minutes} min",
                    retry_after=math.ceil(wait.total_seconds()),
                )

    def failed(self, name: str, address: str) -> None:
        now = self._clock.now()
        for key in self._keys(name, address):
            self._recent(key, now).append(now)
        while len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, name: str) -> None:
        self._failures.pop(("name", name.casefold()), None)
