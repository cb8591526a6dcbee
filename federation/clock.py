"""The clock that every time-dependent rule reads.

Signature windows, delivery backoff, vote windows and offer expiry all take a
``Clock`` instead of calling ``datetime.now()``: production passes a
``SystemClock``, tests pass a ``ManualClock`` and move it instead of sleeping
(ARCHITECTURE.md, "Time"). Whole processes are moved with an ``OffsetClock``:
the wall clock plus a fixed offset, for drills such as "the peer comes back two
hours later". Every datetime a clock hands out is timezone-aware and in UTC, so
comparisons never mix naive and aware values.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["MAX_OFFSET", "Clock", "ManualClock", "OffsetClock", "SystemClock"]

# How far an OffsetClock may move: far beyond any drill, well within datetime's range.
MAX_OFFSET = timedelta(days=36_525)


class Clock(Protocol):
    """Anything that can tell the current time."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class OffsetClock:
    """The real wall clock moved by a fixed offset, forward or back.

    It runs as the wall clock does, so a process using it behaves as it would at that
    other time: retries come due, windows close, signatures are dated accordingly.
    """

    def __init__(self, offset_seconds: float | timedelta) -> None:
        seconds = (
            offset_seconds.total_seconds()
            if isinstance(offset_seconds, timedelta)
            else float(offset_seconds)
        )
        if not math.isfinite(seconds) or abs(seconds) > MAX_OFFSET.total_seconds():
            raise ValueError(
                f"cannot offset a clock by {seconds!r} seconds "
                f"(at most {MAX_OFFSET.days} days either way)"
            )
        self._offset = (
            offset_seconds if isinstance(offset_seconds, timedelta) else timedelta(seconds=seconds)
        )

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def __repr__(self) -> str:
        return f"OffsetClock({self._offset.total_seconds()!r})"


class ManualClock:
    """A clock that only moves when told to, for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = _as_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float | timedelta) -> None:
        """Move the clock forward; going back is what ``set`` is for."""
        if isinstance(seconds, timedelta):
            step = seconds
        else:
            if not math.isfinite(seconds):
                raise ValueError(f"cannot advance a clock by {seconds!r} seconds")
            step = timedelta(seconds=seconds)
        if step < timedelta(0):
            raise ValueError(f"cannot advance a clock by a negative amount ({step})")
        self._now += step

    def set(self, dt: datetime) -> None:
        """Jump to ``dt``, forward or back (a peer with a skewed clock, say)."""
        self._now = _as_utc(dt)

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()!r})"


def _as_utc(dt: datetime) -> datetime:
    # A naive datetime has no defined instant: reject it rather than guess the
    # machine's local zone, which is how off-by-hours expiry bugs start.
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"a clock needs a timezone-aware datetime, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)
