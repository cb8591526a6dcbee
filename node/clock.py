"""The clock of a node process: the system clock, unless a drill moves it.

``COOPNODE_CLOCK_OFFSET`` (seconds, fractional or negative) runs the whole process at
the system time plus that offset: retries come due, expiries pass and signatures are
dated as they would be then. It is a drill knob, read from the environment only and
never written to the config file. Every node of a drill must be moved by the same
offset, since a receiver checks a signature's date against its own clock.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from federation.clock import Clock, OffsetClock, SystemClock
from node.settings import SettingsError

CLOCK_OFFSET_VARIABLE = "COOPNODE_CLOCK_OFFSET"


def node_clock(environ: Mapping[str, str] | None = None) -> Clock:
    """The clock a node process runs on; :class:`SettingsError` for an unreadable offset."""
    environ = os.environ if environ is None else environ
    raw = environ.get(CLOCK_OFFSET_VARIABLE, "").strip()
    if not raw:
        return SystemClock()
    try:
        offset = float(raw)
    except ValueError:
        raise SettingsError(
            f"{CLOCK_OFFSET_VARIABLE}={raw!r}: give the offset in seconds, e.g. 7200"
        ) from None
    try:
        return OffsetClock(offset) if offset else SystemClock()
    except ValueError as exc:
        raise SettingsError(f"{CLOCK_OFFSET_VARIABLE}={raw!r}: {exc}") from None
