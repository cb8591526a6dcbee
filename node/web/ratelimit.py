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
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict, deque
from datetime import datetime, timedelta

from federation.clock import Clock
from node.errors import TooManyRequests

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
# Keys kept at most (oldest forgotten first), so that a flood of names costs bounded memory.
MAX_KEYS = 10_000
# Longer names and addresses share a count: a key never holds more than this of them.
MAX_KEY_CHARS = 64


class LoginLimiter:
    def __init__(
        self, clock: Clock, *, max_failures: int = MAX_FAILURES, window: timedelta = WINDOW
    ) -> None:
        self._clock = clock
        self._limits = {"name": max_failures, "address": max_failures * 4}
        self._window = window
        self._failures: defaultdict[tuple[str, str], deque[datetime]] = defaultdict(deque)

    def _keys(self, name: str, address: str) -> list[tuple[str, str]]:
        return [("name", name.casefold()[:MAX_KEY_CHARS]), ("address", address[:MAX_KEY_CHARS])]

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        failures = self._failures[key]
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
            self._failures[key].append(now)
        while len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]
        return now

    def succeeded(self, name: str, address: str, counted_at: datetime) -> None:
        """The password was right: the name's count is cleared, and the address's
        count of this attempt taken back."""
        name_key, address_key = self._keys(name, address)
        self._failures.pop(name_key, None)
        failures = self._failures.get(address_key)
        if failures is not None:
            with contextlib.suppress(ValueError):  # already forgotten
                failures.remove(counted_at)
