"""The recount page's bookkeeping: one recount at a time and nobody queues, one per
proposal shared by every page asking, the most used kept, failures tried again soon."""

from __future__ import annotations

import asyncio
import time

import pytest

from node.web.ui import audit_page
from node.web.ui.audit_page import KEEP_ERROR_SECONDS, KEPT, Busy, Recount, _Audits


def made(error: str | None = None, at: float | None = None) -> Recount:
    return Recount(None, error, "", time.monotonic() if at is None else at)


async def test_one_recount_runs_at_a_time_and_the_same_one_is_shared() -> None:
    audits = _Audits()
    release = asyncio.Event()
    runs = 0

    async def slow() -> Recount:
        nonlocal runs
        runs += 1
        await release.wait()
        return made()

    first = audits.task("https://a.test/p/1", slow)
    again = audits.task("https://a.test/p/1", slow)
    assert again is first
    with pytest.raises(Busy):
        audits.task("https://a.test/p/2", slow)
    release.set()
    await first
    await asyncio.sleep(0)  # the done callback
    assert runs == 1
    assert audits.fresh("https://a.test/p/1") is not None
    # Free again: another proposal may be recounted now.
    await audits.task("https://a.test/p/2", slow)


async def test_the_most_used_recounts_are_kept_and_failures_expire_in_a_minute() -> None:
    audits = _Audits()
    for n in range(KEPT):
        audits.keep(f"u{n}", made())
    assert audits.fresh("u0") is not None  # used: now the most recent
    audits.keep("new", made())
    assert audits.fresh("u0") is not None
    assert audits.fresh("u1") is None  # the least recently used went
    audits.keep("down", made(error="unreachable", at=time.monotonic() - KEEP_ERROR_SECONDS - 1))
    assert audits.fresh("down") is None
    assert audit_page.KEEP_SECONDS > KEEP_ERROR_SECONDS
