"""What to do after POSTing an activity to an inbox: the outcome, and when to try again.

Classification, as ActivityPub servers answer in practice:

* 2xx: delivered.
* 408, 425, 429 and 5xx: the server is overloaded or failing for now; retry, at the
  time ``Retry-After`` gives when it gives one (within limits: a peer must not park our
  queue for a month, nor make us hammer it).
* 401: Mastodon answers 401 while it cannot yet fetch our key (its own outage, or a
  race with a key rotation); retry.
* 410 Gone: the actor or the whole inbox is gone for good; give up.
* Any other 4xx: the peer refuses this activity (403 for a block, 400 for something it
  cannot read, 413 too large); trying again would get the same answer, so give up.
* No answer (connection refused, reset, timeout, TLS error): retry.

The retry schedule grows from a minute to a day and stops after almost five days. Mastodon
retries for about three days (16 attempts, growing as the fourth power of the attempt);
GoToSocial retries for minutes only. A co-op's followers include small servers run by
volunteers, down for a weekend more often than a big instance is: days, not minutes, is
what makes "nothing is lost" true for them, and five days cover a long weekend plus two
working days to notice and repair.
"""

from __future__ import annotations

import email.utils
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

__all__ = [
    "NOT_OUTAGES",
    "RETRY_DELAYS",
    "Outcome",
    "Verdict",
    "classify",
    "next_attempt",
    "retry_after",
]

# Answers to retry that say nothing of the domain's health: the peer is there, only
# busy (429) or not yet trusting our key (401).
NOT_OUTAGES = frozenset({401, 429})

# The wait after the n-th failed attempt (n from 1); after the last, the delivery is
# given up. The sum is a little under five days.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=1),
    timedelta(days=1),
    timedelta(days=1),
)

# Bounds on a peer's Retry-After: at least a few seconds, at most a day.
MIN_RETRY_AFTER = timedelta(seconds=5)
MAX_RETRY_AFTER = timedelta(days=1)

_RETRY_STATUSES = frozenset({401, 408, 425, 429})


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give up"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str
    # For RETRY: the earliest time the peer asked us to come back (Retry-After), if any.
    not_before: datetime | None = None


def classify(
    status: int | None,
    *,
    error: str | None = None,
    retry_after_header: str | None = None,
    now: datetime,
) -> Verdict:
    """The verdict for one attempt: ``status`` is the HTTP status, or None when no answer
    came (then ``error`` says what happened)."""
    if status is None:
        return Verdict(Outcome.RETRY, f"no answer: {error or 'connection failed'}")
    if 200 <= status < 300:
        return _delivered(status)
    if status in _RETRY_STATUSES or 500 <= status < 600:
        return Verdict(
            Outcome.RETRY, f"HTTP {status}, to retry", retry_after(retry_after_header, now)
        )
    if status == 410:
        return Verdict(Outcome.GIVE_UP, "HTTP 410: gone for good")
    if 400 <= status < 500:
        return Verdict(Outcome.GIVE_UP, f"HTTP {status}: the peer refuses this activity")
    # 1xx and 3xx: a server that redirects an inbox POST is misconfigured; following it
    # would resend the body elsewhere. Retry: the admin there may fix it.
    return Verdict(Outcome.RETRY, f"HTTP {status}, unexpected for an inbox")


@functools.cache
def _delivered(status: int) -> Verdict:
    # Most verdicts, and all alike: made once per status, not once per delivery.
    return Verdict(Outcome.DELIVERED, f"HTTP {status}")


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """When ``Retry-After`` (seconds, or an HTTP date) says to come back, kept within
    :data:`MIN_RETRY_AFTER` and :data:`MAX_RETRY_AFTER`; None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit(), but int("²") fails
        wait = timedelta(seconds=int(value)) if len(value) < 10 else MAX_RETRY_AFTER
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
        wait = when - now
    return now + min(max(wait, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def next_attempt(
    attempts: int, now: datetime, not_before: datetime | None = None
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, or None to give up."""
    if attempts < 1:
        raise ValueError("next_attempt is for a delivery that failed at least once")
    if attempts > len(RETRY_DELAYS):
        return None
    when = now + RETRY_DELAYS[attempts - 1]
    return max(when, not_before) if not_before is not None else when
