"""The doctor's verdicts: each threshold, on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from node.doctor.findings import (
    Backlog,
    Beat,
    FailingPeer,
    Finding,
    Level,
    Report,
    clock_verdict,
    disk_verdict,
    peers_verdict,
    queues_verdict,
    stale_after,
    workers_verdict,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
GIB = 1 << 30


@pytest.mark.parametrize(
    ("skews", "level"),
    [
        ([("a.test", 2.0)], Level.OK),
        ([("a.test", -29.0)], Level.OK),
        ([("a.test", 45.0)], Level.WARNING),
        ([("a.test", -400.0)], Level.PROBLEM),
        # One peer's wrong clock is its own: the median decides.
        ([("a.test", 3.0), ("b.test", -1.0), ("broken.test", 7200.0)], Level.OK),
        ([("a.test", 600.0), ("b.test", 590.0), ("c.test", 1.0)], Level.PROBLEM),
    ],
)
def test_the_clock_is_judged_by_the_peers_median(
    skews: list[tuple[str, float]], level: Level
) -> None:
    assert clock_verdict(skews, []).level is level


def test_a_clock_behind_the_peers_is_said_so_with_what_to_do() -> None:
    finding = clock_verdict([("a.test", 600.0)], [])

    assert "600 s behind the peers (a.test +600 s)" in finding.summary
    assert "chrony" in finding.advice


def test_without_peers_the_clock_is_skipped_and_says_why() -> None:
    assert clock_verdict([], []).level is Level.SKIPPED
    silent = clock_verdict([], ["quiet.test"])
    assert silent.level is Level.SKIPPED
    assert "quiet.test" in silent.summary


@pytest.mark.parametrize(
    ("free", "total", "level"),
    [
        (50 * GIB, 100 * GIB, Level.OK),
        (4 * GIB, 100 * GIB, Level.WARNING),  # under 5 GiB
        (8 * GIB, 100 * GIB, Level.WARNING),  # under 10 %
        (GIB // 2, 100 * GIB, Level.PROBLEM),
        (3 * GIB, 200 * GIB, Level.PROBLEM),  # under 2 %
    ],
)
def test_disk_space(free: int, total: int, level: Level) -> None:
    assert disk_verdict("/srv/coop", free, total).level is level


LOOPS = {
    "inbox": stale_after(1.0, timedelta(seconds=30)),
    "retention": stale_after(600.0, timedelta(seconds=30)),
}


def beat(poller: str, seconds_ago: float) -> Beat:
    return Beat(poller, "coop-1", 42, NOW - timedelta(seconds=seconds_ago))


def test_workers_that_beat_lately_are_alive() -> None:
    finding = workers_verdict(LOOPS, [beat("inbox", 20), beat("retention", 900)], now=NOW)

    assert finding.level is Level.OK
    assert "all 2 loops" in finding.summary


def test_a_loop_that_stopped_beating_is_named_with_its_process() -> None:
    finding = workers_verdict(LOOPS, [beat("inbox", 200), beat("retention", 30)], now=NOW)

    assert finding.level is Level.PROBLEM
    assert "inbox last ran 3 min ago (process 42 on coop-1)" in finding.summary
    assert "coopnode serve" in finding.advice


def test_the_slow_loops_may_idle_longer() -> None:
    # The retention idles ten minutes between rounds: twenty is not stopped yet.
    assert (
        workers_verdict(LOOPS, [beat("inbox", 1), beat("retention", 1250)], now=NOW).level
        is Level.OK
    )
    assert (
        workers_verdict(LOOPS, [beat("inbox", 1), beat("retention", 1400)], now=NOW).level
        is Level.PROBLEM
    )


def test_workers_that_never_ran() -> None:
    nothing = workers_verdict(LOOPS, [], now=NOW)
    assert nothing.level is Level.PROBLEM
    assert "no background loop has ever run" in nothing.summary

    one = workers_verdict(LOOPS, [beat("inbox", 1)], now=NOW)
    assert one.level is Level.PROBLEM
    assert "retention never ran" in one.summary


def test_the_latest_beat_of_a_loop_counts_among_processes() -> None:
    # A restarted node leaves its old process's rows behind: the newest one decides.
    beats = [
        beat("inbox", 5),
        beat("retention", 5),
        Beat("inbox", "coop-1", 7, NOW - timedelta(days=2)),
    ]

    assert workers_verdict(LOOPS, beats, now=NOW).level is Level.OK


def test_queues_waiting_long_are_a_problem() -> None:
    calm = Backlog(3, NOW - timedelta(seconds=20), 12, NOW - timedelta(minutes=2))
    assert queues_verdict(calm, now=NOW).level is Level.OK
    assert (
        "3 received activities and 12 deliveries waiting" in queues_verdict(calm, now=NOW).summary
    )

    stuck_inbox = Backlog(3, NOW - timedelta(minutes=6), 0, None)
    finding = queues_verdict(stuck_inbox, now=NOW)
    assert finding.level is Level.PROBLEM
    assert "the oldest received activity has waited 6 min" in finding.summary

    late_delivery = Backlog(0, None, 5, NOW - timedelta(minutes=30))
    assert "a delivery has been due for 30 min" in queues_verdict(late_delivery, now=NOW).summary


def test_peers_failing_for_a_day_are_named() -> None:
    since = NOW - timedelta(days=3)
    failing = [
        FailingPeer("gone.test", since, True, "ConnectError: refused"),
        FailingPeer("new.test", NOW - timedelta(hours=2), False, None),
    ]
    finding = peers_verdict(failing, now=NOW)

    assert finding.level is Level.WARNING
    assert "1 peer(s) have failed for more than a day" in finding.summary
    assert (
        "gone.test since 3 days ago (marked unavailable): ConnectError: refused" in finding.summary
    )
    assert "new.test" not in finding.summary
    assert peers_verdict(failing[1:], now=NOW).level is Level.OK
    assert peers_verdict([], now=NOW).summary == "no peer is failing"


def test_many_failing_peers_are_counted_not_all_listed() -> None:
    failing = [FailingPeer(f"p{n}.test", NOW - timedelta(days=2), False, None) for n in range(8)]

    summary = peers_verdict(failing, now=NOW).summary

    assert "p4.test" in summary
    assert "p5.test" not in summary
    assert "and 3 more" in summary


def test_warnings_leave_the_exit_status_at_zero_problems_do_not() -> None:
    fine = Finding("disk", Level.OK, "")
    warned = Finding("peers", Level.WARNING, "")
    failed = Finding("tls", Level.PROBLEM, "")

    assert Report((fine, warned)).exit_status == 0
    assert Report((fine, warned, failed)).exit_status == 1
    assert Report((fine, failed)).problems == [failed]


def test_email_verdicts() -> None:
    from node.doctor.findings import MailHealth, mail_verdict

    now = datetime(2027, 3, 1, 12, tzinfo=UTC)
    quiet = MailHealth(0, None, None, 0, 0)
    assert mail_verdict(False, quiet, now=now).level is Level.OK
    waiting = MailHealth(2, now - timedelta(minutes=5), None, 0, 0)
    off = mail_verdict(False, waiting, now=now)
    assert off.level is Level.WARNING
    assert "2 message(s) wait for a mail server" in off.summary
    assert "coopnode mail test" in off.advice
    assert (
        mail_verdict(True, MailHealth(3, now - timedelta(minutes=5), None, 40, 0), now=now).level
        is Level.OK
    )
    stuck = mail_verdict(
        True,
        MailHealth(3, now - timedelta(hours=2), "cannot connect to the SMTP server", 0, 0),
        now=now,
    )
    assert stuck.level is Level.PROBLEM
    assert "the oldest has waited" in stuck.summary
    assert "cannot connect to the SMTP server" in stuck.summary
    refused = mail_verdict(True, MailHealth(0, None, "550 no such user", 10, 1), now=now)
    assert refused.level is Level.WARNING
    assert "1 refused for good" in refused.summary
