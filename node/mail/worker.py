"""The mail worker's round: tell the new events, queue the digests that are due, hand
the due messages to the SMTP server, and now and then forget old sent messages.

Without SMTP settings the node sends nothing and tells nothing (it says so once in
its log); messages already queued wait for the settings.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any

from node.mail import events, messages, smtp, store, tokens
from node.mail.kinds import ALL, DIGEST, TEST, VERIFY, Frequency, kinds_for
from node.runtime import Node, Poller

log = logging.getLogger(__name__)

BATCH = 100
# Messages handed over, then recorded, at a time.
CHUNK = 25
LEASE = timedelta(minutes=15)
# A batch still sending after this leaves the rest for the next round: well inside the
# lease, so that no other worker takes a message this one may still send.
SEND_FOR = timedelta(minutes=4)
GIVE_UP_AFTER = timedelta(days=3)
MAX_BACKOFF = timedelta(hours=6)
DIGEST_BATCH = 200
PRUNE_EVERY = timedelta(hours=1)
KEEP = timedelta(days=30)
# What each process said already: that email is off.
_said: set[str] = set()


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes after each failed attempt, up to 6 hours, give or take 10 %."""
    base = min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)
    return base * random.uniform(0.9, 1.1)


async def run_once(node: Node) -> int:
    if not node.settings.mail_on:
        if "off" not in _said:
            _said.add("off")
            log.warning(
                "email is off: no smtp_host in the settings, so members get no "
                "notifications (see `coopnode mail test`)"
            )
        return 0
    now = node.clock.now()
    done = await events.run_once(node)
    done += await queue_digests(node, now)
    done += await send_due(node)
    await _prune(node, now)
    return done


def digest_due_at(now: datetime, hour: int) -> datetime:
    """The last time digests were due: today's digest hour, or yesterday's before it."""
    today = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return today if now >= today else today - timedelta(days=1)


async def queue_digests(node: Node, now: datetime) -> int:
    due_at = digest_due_at(now, node.settings.mail_digest_hour)
    members = await node.db.read(
        lambda conn: store.digests_due(conn, due_at=due_at, limit=DIGEST_BATCH)
    )
    base = node.settings.base_url

    def one(conn: Any, member_id: int) -> bool:
        recipient = store.recipient(conn, member_id)
        items = store.take_digest(conn, member_id, now=now)
        role = store.role_of(conn, member_id)
        # What the member may still receive, and still wants: not an admin's news for
        # an admin no longer, nor a kind unsubscribed from since.
        chosen = store.preferences(conn, member_id)
        allowed = kinds_for(role) if role is not None else ()
        items = [i for i in items if i[0] in allowed and chosen[i[0]] != Frequency.NEVER]
        if recipient is None or not items:
            return False
        listed = [
            {
                "subject": messages.subject_of(kind, recipient.language, params),
                "url": str(params.get("url") or base),
            }
            for kind, params, _ in items
        ]
        store.queue(
            conn,
            [
                store.NewMail(
                    member_id=member_id,
                    address=recipient.address,
                    kind=DIGEST,
                    language=recipient.language,
                    params={"items": listed, "coop": node.settings.name, "url": base},
                    dedupe=f"{DIGEST} {member_id} {due_at.isoformat()}",
                    message_id=messages.new_message_id(node.settings),
                )
            ],
            now=now,
        )
        return True

    queued = 0
    for member_id in members:

        def write(conn: Any, member_id: int = member_id) -> bool:
            return one(conn, member_id)

        try:
            queued += await node.db.write(write)
        except Exception:
            log.exception("mail: could not queue the digest of member %s", member_id)
    return queued


RenderKey = tuple[str, str, str]


def build(
    node: Node, mail: store.Outgoing, rendered: dict[RenderKey, messages.Rendered]
) -> messages.Envelope:
    """The message as it goes out, its links made for its recipient. The rendering is
    shared by the messages of a batch that say the same thing in the same language
    (those of one event): only the unsubscribe link differs, put in afterwards."""
    settings = node.settings
    base = settings.base_url
    params = dict(mail.params)
    params.setdefault("coop", settings.name)
    params.setdefault("url", base)
    unsubscribe = None
    if mail.kind not in (VERIFY, TEST) and mail.member_id is not None and mail.secret:
        kind = ALL if mail.kind == DIGEST else mail.kind
        token = tokens.unsubscribe_token(mail.secret, mail.member_id, kind)
        unsubscribe = f"{base}/mail/unsubscribe/{token}"
        params["settings_url"] = f"{base}/me/notifications"
        params["unsubscribe_url"] = messages.UNSUBSCRIBE_PLACEHOLDER
    key = (mail.kind, mail.language, json.dumps(params, sort_keys=True, default=str))
    made = rendered.get(key)
    if made is None:
        made = rendered[key] = messages.render(mail.kind, mail.language, params)
    return messages.envelope(
        settings,
        made,
        to=mail.address,
        message_id=mail.message_id,
        language=mail.language,
        list_id=None if mail.kind in (VERIFY, TEST) else mail.kind.replace("_", "-"),
        unsubscribe_url=unsubscribe,
    )


def _stale(mail: store.Outgoing) -> str | None:
    """Why a queued message must not go, if it must not: its member changed or lost
    the address it was queued for."""
    if mail.member_id is None:
        return None
    if mail.current_address != mail.address:
        return "the member's address changed"
    if mail.kind != VERIFY and not mail.verified:
        return "the member's address is not verified"
    return None


async def send_due(node: Node) -> int:
    now = node.clock.now()
    due = await node.db.write(lambda conn: store.claim(conn, now=now, lease=LEASE, limit=BATCH))
    if not due:
        return 0
    going: list[tuple[store.Outgoing, messages.Envelope]] = []
    dropped: list[tuple[int, str]] = []
    rendered: dict[RenderKey, messages.Rendered] = {}
    for mail in due:
        reason = _stale(mail)
        if reason is None:
            try:
                going.append((mail, build(node, mail, rendered)))
                continue
            except Exception as exc:  # a message that cannot be made is one message lost
                log.exception("mail: cannot render message %s", mail.id)
                reason = f"cannot be rendered: {type(exc).__name__}"
        dropped.append((mail.id, reason))
    until = due[0].claimed_until
    started = time.monotonic()

    def record(
        conn: Any,
        dropped: list[tuple[int, str]],
        done: list[tuple[store.Outgoing, smtp.Result]],
        after: datetime,
    ) -> None:
        sent = [mail.id for mail, result in done if result.outcome == smtp.Outcome.SENT]
        store.mark_sent(conn, sent, now=after, claimed_until=until)
        for mail_id, reason in dropped:
            store.mark_failed(conn, mail_id, error=reason, claimed_until=until)
        for mail, result in done:
            if result.outcome == smtp.Outcome.REFUSED:
                store.mark_failed(conn, mail.id, error=result.detail, claimed_until=until)
            elif result.outcome == smtp.Outcome.RETRY:
                if after - mail.created_at > GIVE_UP_AFTER:
                    error = f"gave up: {result.detail}"
                    store.mark_failed(conn, mail.id, error=error, claimed_until=until)
                else:
                    store.mark_retry(
                        conn,
                        mail.id,
                        error=result.detail,
                        at=after + backoff(mail.attempts),
                        claimed_until=until,
                    )

    sent = 0
    failures: list[str] = []
    # Recorded a chunk at a time: a process that stops mid-batch leaves at most one
    # chunk sent and not recorded (sent again after the lease, with its Message-IDs).
    for first in range(0, max(len(going), 1), CHUNK):
        chunk = going[first : first + CHUNK]
        if not chunk:
            results: list[smtp.Result] = []
        elif time.monotonic() - started > SEND_FOR.total_seconds():
            # Far past what a batch takes: the rest waits for the next round, well
            # inside the lease.
            results = [smtp.Result(smtp.Outcome.RETRY, "the batch took too long")] * len(chunk)
        else:
            results = await smtp.send_batch(node.settings, [message for _, message in chunk])
        done = [(mail, result) for (mail, _), result in zip(chunk, results, strict=True)]
        after = node.clock.now()
        gone, dropped = dropped, []

        def write(
            conn: Any,
            gone: list[tuple[int, str]] = gone,
            done: list[tuple[store.Outgoing, smtp.Result]] = done,
            after: datetime = after,
        ) -> None:
            record(conn, gone, done, after)

        await node.db.write(write)
        sent += sum(1 for _, r in done if r.outcome == smtp.Outcome.SENT)
        failures += [r.detail for _, r in done if r.outcome != smtp.Outcome.SENT]
    if failures:
        log.warning("mail: %d of %d messages not sent: %s", len(failures), len(going), failures[0])
    return sent


async def _prune(node: Node, now: datetime) -> None:
    last = node.mail_pruned_at
    if last is not None and now - last < PRUNE_EVERY:
        return
    node.mail_pruned_at = now
    await node.db.write(lambda conn: store.prune(conn, before=now - KEEP))


def wakeup(node: Node) -> Any:
    return node.mail_wakeup


MAIL_POLLER = Poller(name="mail", run_once=run_once, idle_seconds=5.0, wakeup=wakeup)
