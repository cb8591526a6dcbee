from datetime import UTC, datetime, timedelta, timezone

import pytest

from federation.clock import MAX_OFFSET, Clock, ManualClock, OffsetClock, SystemClock

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_system_clock_tells_aware_utc_time() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)

    assert now.tzinfo is UTC
    assert before <= now <= after


def test_every_clock_satisfies_the_protocol() -> None:
    clocks: list[Clock] = [SystemClock(), ManualClock(START), OffsetClock(3600)]
    assert all(clock.now().utcoffset() == timedelta(0) for clock in clocks)


def test_manual_clock_stands_still_until_moved() -> None:
    clock = ManualClock(START)
    assert clock.now() == START
    assert clock.now() == START


def test_manual_clock_advances_by_seconds_or_timedelta() -> None:
    clock = ManualClock(START)

    clock.advance(1.5)
    assert clock.now() == START + timedelta(seconds=1.5)

    clock.advance(timedelta(days=3))
    assert clock.now() == START + timedelta(days=3, seconds=1.5)

    clock.advance(0)
    assert clock.now() == START + timedelta(days=3, seconds=1.5)


@pytest.mark.parametrize("step", [-1, -0.001, timedelta(seconds=-1)])
def test_manual_clock_refuses_to_advance_backwards(step: float | timedelta) -> None:
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(step)
    assert clock.now() == START


@pytest.mark.parametrize("step", [float("nan"), float("inf")])
def test_manual_clock_refuses_non_finite_steps(step: float) -> None:
    with pytest.raises(ValueError, match="cannot advance"):
        ManualClock(START).advance(step)


def test_manual_clock_can_be_set_back_and_forth() -> None:
    clock = ManualClock(START)
    earlier = START - timedelta(hours=5)

    clock.set(earlier)
    assert clock.now() == earlier

    clock.set(START)
    assert clock.now() == START


def test_other_zones_are_converted_to_utc() -> None:
    paris_summer = timezone(timedelta(hours=2))
    clock = ManualClock(datetime(2025, 7, 1, 14, 0, tzinfo=paris_summer))

    assert clock.now() == datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC

    clock.set(datetime(2025, 7, 1, 16, 0, tzinfo=paris_summer))
    assert clock.now().hour == 14
    assert clock.now().tzinfo is UTC


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2025, 3, 1, 12, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(naive)

    clock = ManualClock(START)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(naive)
    assert clock.now() == START


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (7200, timedelta(hours=2)),
        (1.5, timedelta(seconds=1.5)),
        (-90, timedelta(seconds=-90)),
        (timedelta(days=3), timedelta(days=3)),
        (0, timedelta(0)),
    ],
)
def test_offset_clock_runs_as_the_wall_clock_moved_by_its_offset(
    offset: float | timedelta, expected: timedelta
) -> None:
    clock = OffsetClock(offset)

    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)

    assert clock.offset == expected
    assert now.tzinfo is UTC
    assert before + expected <= now <= after + expected


def test_offset_clock_keeps_running() -> None:
    clock = OffsetClock(-3600)
    first = clock.now()
    second = clock.now()

    assert first <= second
    assert second < datetime.now(UTC)


@pytest.mark.parametrize(
    "offset",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        MAX_OFFSET.total_seconds() + 1,
        -MAX_OFFSET.total_seconds() - 1,
        MAX_OFFSET + timedelta(seconds=1),
    ],
)
def test_offset_clock_refuses_offsets_it_cannot_keep(offset: float | timedelta) -> None:
    with pytest.raises(ValueError, match="cannot offset a clock"):
        OffsetClock(offset)


def test_offset_clock_accepts_the_largest_offsets() -> None:
    assert OffsetClock(MAX_OFFSET).now() > datetime.now(UTC) + MAX_OFFSET - timedelta(days=1)
    assert OffsetClock(-MAX_OFFSET).now() < datetime.now(UTC) - MAX_OFFSET + timedelta(days=1)


def test_offset_clock_shows_its_offset() -> None:
    assert repr(OffsetClock(7200)) == "OffsetClock(7200.0)"
    assert repr(OffsetClock(timedelta(minutes=-1.5))) == "OffsetClock(-90.0)"
