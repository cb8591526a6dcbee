"""Classifying delivery outcomes and scheduling retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from federation.delivery import (
    MAX_RETRY_AFTER,
    MIN_RETRY_AFTER,
    RETRY_DELAYS,
    Outcome,
    classify,
    next_attempt,
    retry_after,
)

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (202, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (401, Outcome.RETRY),
        (408, Outcome.RETRY),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (301, Outcome.RETRY),
        (400, Outcome.GIVE_UP),
        (403, Outcome.GIVE_UP),
        (404, Outcome.GIVE_UP),
        (410, Outcome.GIVE_UP),
        (413, Outcome.GIVE_UP),
        (None, Outcome.RETRY),
    ],
)
def test_each_answer_is_classified(status: int | None, outcome: Outcome) -> None:
    assert classify(status, error="timed out", now=NOW).outcome is outcome


def test_gone_says_so() -> None:
    assert "gone" in classify(410, now=NOW).reason


def test_no_answer_keeps_the_error() -> None:
    assert "connection refused" in classify(None, error="connection refused", now=NOW).reason


def test_retry_after_in_seconds_or_as_a_date_is_honoured() -> None:
    assert classify(429, retry_after_header="120", now=NOW).not_before == NOW + timedelta(
        seconds=120
    )
    date = "Mon, 01 Mar 2027 10:00:00 GMT"
    assert classify(503, retry_after_header=date, now=NOW).not_before == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", NOW + MIN_RETRY_AFTER),
        ("999999999999", NOW + MAX_RETRY_AFTER),
        ("2592000", NOW + MAX_RETRY_AFTER),  # a month: capped at a day
        ("Sun, 28 Feb 2027 09:00:00 GMT", NOW + MIN_RETRY_AFTER),  # in the past
        ("soon", None),
        ("²", None),  # a digit to str.isdigit, not to int()
        ("٣٠", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_kept_within_bounds(value: str | None, expected: datetime | None) -> None:
    assert retry_after(value, NOW) == expected


def test_retries_grow_to_a_day_and_stop_before_five_days() -> None:
    waits = []
    attempts = 0
    while (when := next_attempt(attempts + 1, NOW)) is not None:
        attempts += 1
        waits.append(when - NOW)
    assert waits == list(RETRY_DELAYS)
    assert waits == sorted(waits)
    assert timedelta(days=4) < sum(waits, timedelta()) < timedelta(days=5)


def test_a_later_retry_after_wins_over_the_schedule() -> None:
    later = NOW + timedelta(hours=3)
    assert next_attempt(1, NOW, not_before=later) == later
    assert next_attempt(5, NOW, not_before=NOW + timedelta(seconds=5)) == NOW + RETRY_DELAYS[4]
