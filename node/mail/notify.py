"""Telling members of an event: each one who wants it at once gets a message in the
outbox, within the hourly limit; those who chose the daily digest, or are past the
limit, get an item in their next digest. The event is recorded as told in the same
transaction, so two workers, or two rounds, never tell it twice."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from node.mail import messages, store
from node.mail.kinds import Frequency, Kind
from node.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

HOUR = timedelta(hours=1)
NOTIFICATIONS = tuple(str(kind) for kind in Kind)


def dedupe_key(kind: str, member_id: int, subject: str) -> str:
    digest = hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()[:40]
    return f"{kind} {member_id} {digest}"


def tell(
    conn: Connection,
    settings: Settings,
    *,
    kind: Kind,
    subject: str,
    targets: Sequence[store.Target],
    params: dict[str, Any],
    now: datetime,
) -> tuple[int, int]:
    """Queue the event's messages and digest items; (messages, digest items)."""
    at_once = [t.member_id for t in targets if t.frequency == Frequency.NOW]
    recent = store.sent_recently(conn, at_once, since=now - HOUR, kinds=NOTIFICATIONS)
    mails: list[store.NewMail] = []
    later: list[tuple[int, str, dict[str, Any], str | None]] = []
    for target in targets:
        dedupe = dedupe_key(kind, target.member_id, subject)
        sent = recent.get(target.member_id, 0)
        if target.frequency == Frequency.NOW and sent < settings.mail_per_hour:
            recent[target.member_id] = sent + 1
            mails.append(
                store.NewMail(
                    member_id=target.member_id,
                    address=target.address,
                    kind=kind,
                    language=target.language,
                    params=params,
                    dedupe=dedupe,
                    message_id=messages.new_message_id(settings),
                )
            )
        else:
            later.append((target.member_id, kind, params, dedupe))
    store.queue(conn, mails, now=now)
    store.keep_for_digest(conn, later, now=now)
    return len(mails), len(later)
