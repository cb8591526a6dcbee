"""Email notifications against a real SMTP server (aiosmtpd on a loopback port): what
is sent and to whom, in the member's language; retries when the server is down; no
duplicate after a restart; the daily digest; the hourly limit; one-click unsubscribe."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from node.mail import addresses, store, worker
from node.mail.kinds import Kind
from node.runtime import Node
from node.storage.tables import mail_outbox
from tests.support.coops import Coop, make_coop
from tests.support.network import Network
from tests.support.smtp import MailServer, Received, mail_server

VERIFY_LINK = re.compile(r"https?://\S+/mail/verify/(\S+)")


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    with mail_server() as server:
        yield server


async def subscribe(
    coop: Coop, smtp: MailServer, who: str, address: str, *, language: str = "en", **choices: str
) -> None:
    """Give ``who`` a verified address, following the link the verification email holds."""
    response = await coop.node.request(
        "PATCH",
        "/api/v1/me/notifications",
        json={"email": address, "language": language, "notifications": choices},
        headers=coop.local[who],
    )
    assert response.status_code == 200, response.text
    assert response.json()["verified"] is False
    await worker.run_once(coop.node.node)
    [verification] = smtp.to(address)
    assert verification.header("List-Unsubscribe") is None  # not a notification
    match = VERIFY_LINK.search(verification.text)
    assert match is not None, verification.text
    assert await addresses.verify(coop.node.node, match.group(1))
    smtp.recorder.received.clear()


def notifications(smtp: MailServer, address: str) -> list[Received]:
    return smtp.to(address)


async def outbox(node: Node) -> dict[str, int]:
    return await node.db.read(store.outbox_counts)


async def mail_coop(network: Network, smtp: MailServer, **settings: Any) -> Coop:
    return await make_coop(network, local=3, remote=0, **smtp.settings(), **settings)


async def test_a_proposal_opening_is_mailed_to_each_voter_in_their_language(
    network: Network, smtp: MailServer
) -> None:
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "ana@mail.test", language="fr")
    await subscribe(coop, smtp, "m1", "ben@mail.test")
    # m2 gave no address: nothing goes to them.
    created = await coop.propose("m0", title="Ouvrir un second point de retrait")
    await network.settle()

    [french] = notifications(smtp, "ana@mail.test")
    [english] = notifications(smtp, "ben@mail.test")
    assert len(smtp.received) == 2
    assert french.subject.startswith("Ouvrir un second point de retrait : votez jusqu’au ")
    assert "Une proposition est ouverte au vote" in french.text
    assert english.subject.startswith("Ouvrir un second point de retrait: vote until ")
    assert "Read the proposal and vote" in english.text
    link = f"{coop.node.base}/proposals/{created['id']}"
    assert link in english.text
    assert f'href="{link}"' in english.html
    assert english.header("Content-Language") == "en"
    assert french.header("Content-Language") == "fr"
    # RFC 8058 one-click unsubscribe, on notifications.
    assert english.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    unsubscribe = english.header("List-Unsubscribe")
    assert unsubscribe is not None
    assert unsubscribe.startswith(f"<{coop.node.base}/mail/unsubscribe/")
    assert english.header("Auto-Submitted") == "auto-generated"
    assert english.message["From"].addresses[0].addr_spec == "notifications@alpha.test"

    # Told once: more rounds send nothing more.
    network.clock.advance(timedelta(minutes=5))
    await network.settle()
    assert len(smtp.received) == 2


async def test_a_server_that_is_down_loses_nothing(network: Network, smtp: MailServer) -> None:
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "ana@mail.test")
    node = coop.node.node
    smtp.stop()
    await coop.propose("m0", title="While the mail server is down")
    await network.settle()
    found = await node.db.read(
        lambda conn: conn.execute(
            select(mail_outbox.c.state, mail_outbox.c.last_error).where(
                mail_outbox.c.kind != "verify"
            )
        ).all()
    )
    assert [state for state, _ in found] == ["pending"]
    assert "cannot connect to the SMTP server" in found[0][1]

    smtp.start()
    await worker.run_once(node)  # not due yet: it waits for its next try
    assert smtp.received == []
    network.clock.advance(timedelta(minutes=2))
    await worker.run_once(node)
    [mail] = smtp.received
    assert "While the mail server is down" in mail.subject
    assert await outbox(node) == {"sent": 2}  # the verification email, and this one


async def test_a_451_is_tried_again_and_a_550_is_not(network: Network, smtp: MailServer) -> None:
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "ana@mail.test")
    await subscribe(coop, smtp, "m1", "ben@mail.test")
    node = coop.node.node
    smtp.recorder.answers = ["451 4.3.0 try again later"]
    smtp.recorder.refuse["ben@mail.test"] = "550 5.1.1 no such mailbox"
    await coop.propose("m0", title="Greylisted")
    await network.settle()
    assert smtp.received == []
    assert await outbox(node) == {"sent": 2, "pending": 1, "failed": 1}
    network.clock.advance(timedelta(minutes=2))
    await worker.run_once(node)
    assert [m.recipients for m in smtp.received] == [["ana@mail.test"]]
    assert await outbox(node) == {"sent": 3, "failed": 1}


async def test_a_restart_sends_nothing_twice(network: Network, smtp: MailServer) -> None:
    """The worker hands half the messages over and its process stops; a new process on
    the same database sends only the others, each once, with its own Message-ID."""
    coop = await make_coop(network, local=6, remote=0, **smtp.settings())
    for i in range(6):
        await subscribe(coop, smtp, f"m{i}", f"member{i}@mail.test")
    node = coop.node.node
    await coop.propose("m0", title="Restart")
    # The proposal opens; the messages are queued but the worker of this process stops
    # after handing three of them over.
    from node.governance import worker as governance_worker
    from node.inbox import worker as inbox_worker

    await inbox_worker.run_once(node)
    await governance_worker.run_once(node)
    original = worker.BATCH
    worker.BATCH = 3
    try:
        await worker.run_once(node)
    finally:
        worker.BATCH = original
    assert len(smtp.received) == 3

    restarted = Node(settings=node.settings, db=node.db, http=node.http, clock=node.clock)
    await worker.run_once(restarted)
    await worker.run_once(restarted)
    network.clock.advance(timedelta(hours=1))
    await worker.run_once(restarted)
    ids = [m.header("Message-ID") for m in smtp.received]
    assert len(ids) == 6
    assert len(set(ids)) == 6
    assert sorted(r for m in smtp.received for r in m.recipients) == [
        f"member{i}@mail.test" for i in range(6)
    ]


async def test_a_message_taken_by_a_worker_that_died_is_sent_after_its_lease(
    network: Network, smtp: MailServer
) -> None:
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "ana@mail.test")
    node = coop.node.node
    await coop.propose("m0", title="Lease")
    from node.governance import worker as governance_worker

    await governance_worker.run_once(node)
    from node.mail import events

    await events.run_once(node)
    now = node.clock.now()
    # A worker takes it, then dies before handing it over.
    taken = await node.db.write(
        lambda conn: store.claim(conn, now=now, lease=worker.LEASE, limit=10)
    )
    assert len(taken) == 1
    await worker.run_once(node)
    assert smtp.received == []
    network.clock.advance(worker.LEASE + timedelta(seconds=1))
    await worker.run_once(node)
    assert len(smtp.received) == 1


async def test_the_daily_digest_gathers_what_a_member_chose_to_read_once_a_day(
    network: Network, smtp: MailServer
) -> None:
    coop = await mail_coop(network, smtp, mail_digest_hour=7)
    await subscribe(
        coop, smtp, "m0", "ana@mail.test", proposal_opened="daily", proposal_outcome="never"
    )
    await subscribe(coop, smtp, "m1", "ben@mail.test")
    first = await coop.propose("m0", title="First")
    await coop.propose("m0", title="Second")
    await network.settle()
    assert notifications(smtp, "ana@mail.test") == []
    assert len(notifications(smtp, "ben@mail.test")) == 2

    # The clock starts at 09:00: the digest waits for 07:00 the next day.
    network.clock.advance(timedelta(hours=21, minutes=59))
    await network.settle()
    assert notifications(smtp, "ana@mail.test") == []
    network.clock.advance(timedelta(minutes=2))
    await network.settle()
    [digest] = notifications(smtp, "ana@mail.test")
    assert "your daily summary" in digest.subject
    assert "First: vote until" in digest.text
    assert "Second: vote until" in digest.text
    assert f"{coop.node.base}/proposals/{first['id']}" in digest.text
    # Its unsubscribe link stops everything.
    assert ".all." in (digest.header("List-Unsubscribe") or "")
    # Nothing more until the next day's digest, and only if something happened.
    network.clock.advance(timedelta(hours=1))
    await network.settle()
    assert len(notifications(smtp, "ana@mail.test")) == 1


async def test_past_the_hourly_limit_notifications_wait_for_the_digest(
    network: Network, smtp: MailServer
) -> None:
    coop = await mail_coop(network, smtp, mail_per_hour=2)
    await subscribe(coop, smtp, "m0", "ana@mail.test")
    for title in ("One", "Two", "Three"):
        await coop.propose("m0", title=title)
    await network.settle()
    assert len(notifications(smtp, "ana@mail.test")) == 2
    member_id = await addresses.member_of(coop.node.node, await _actor_pk(coop, "m0"))
    items = await coop.node.node.db.write(
        lambda conn: store.take_digest(conn, member_id, now=network.clock.now())
    )
    assert [(kind, params["title"]) for kind, params, _ in items] == [
        (Kind.PROPOSAL_OPENED, "Three")
    ]


async def _actor_pk(coop: Coop, who: str) -> int:
    from sqlalchemy import select as sql_select

    from node.storage.tables import actors

    return int(
        await coop.node.node.db.read(
            lambda conn: conn.execute(
                sql_select(actors.c.id).where(actors.c.username == who)
            ).scalar_one()
        )
    )


async def test_one_click_unsubscribe_stops_that_kind(network: Network, smtp: MailServer) -> None:
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "ana@mail.test")
    await coop.propose("m0", title="Before")
    await network.settle()
    [mail] = smtp.received
    url = (mail.header("List-Unsubscribe") or "").strip("<>")
    token = url.rsplit("/", 1)[1]
    done = await addresses.unsubscribe(coop.node.node, token)
    assert done.kind == Kind.PROPOSAL_OPENED
    # Twice is harmless.
    await addresses.unsubscribe(coop.node.node, token)
    await coop.propose("m0", title="After")
    await network.settle()
    assert [m.subject.split(":")[0] for m in smtp.received] == ["Before"]
    # Another member's id under this signature is refused.
    forged = token.replace("1.", "2.", 1)
    with pytest.raises(addresses.NotFound):
        await addresses.check_unsubscribe(coop.node.node, forged)


async def test_a_new_address_cancels_what_was_queued_for_the_old_one(
    network: Network, smtp: MailServer
) -> None:
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "old@mail.test")
    node = coop.node.node
    smtp.stop()
    await coop.propose("m0", title="Queued for the old address")
    await network.settle()
    response = await coop.node.request(
        "PATCH",
        "/api/v1/me/notifications",
        json={"email": "new@mail.test"},
        headers=coop.local["m0"],
    )
    assert response.json() == {**response.json(), "email": "new@mail.test", "verified": False}
    smtp.start()
    network.clock.advance(timedelta(minutes=5))
    await worker.run_once(node)
    await worker.run_once(node)
    assert smtp.to("old@mail.test") == []
    [verification] = smtp.to("new@mail.test")
    assert "Confirm your email address" in verification.subject
    counts = await outbox(node)
    assert counts.get("failed") == 1


async def test_reminders_go_to_those_who_have_not_voted_and_outcomes_to_all(
    network: Network, smtp: MailServer
) -> None:
    coop = await mail_coop(network, smtp, mail_reminder_hours=24)
    for who, address in (("m0", "ana@mail.test"), ("m1", "ben@mail.test")):
        await subscribe(coop, smtp, who, address)
    created = await coop.propose("m0", title="Tariff", quorum="0%")
    await network.settle()
    response = await coop.vote("m0", created["id"], "For")
    assert response.status_code in (200, 201, 202), response.text
    await network.settle()
    smtp.recorder.received.clear()
    network.clock.advance(timedelta(days=6, hours=1))
    await network.settle()
    reminders = smtp.received
    assert [m.recipients for m in reminders] == [["ben@mail.test"]]
    assert reminders[0].subject.startswith("Reminder: “Tariff” closes on ")
    smtp.recorder.received.clear()
    network.clock.advance(timedelta(days=1))
    await network.settle()
    outcomes = smtp.received
    assert sorted(r for m in outcomes for r in m.recipients) == ["ana@mail.test", "ben@mail.test"]
    assert all(m.subject == "Outcome: Tariff" for m in outcomes)
    assert "was adopted" in outcomes[0].text


async def test_without_smtp_settings_the_node_works_and_says_so_once(
    network: Network, caplog: pytest.LogCaptureFixture
) -> None:
    coop = await make_coop(network, local=1, remote=0)
    worker._said.clear()
    response = await coop.node.request(
        "PATCH",
        "/api/v1/me/notifications",
        json={"email": "ana@mail.test"},
        headers=coop.local["m0"],
    )
    assert response.status_code == 200
    assert response.json()["mail"] is False
    await coop.propose("m0", title="No mail")
    with caplog.at_level("WARNING", logger="node.mail.worker"):
        await network.settle()
        await network.settle()
    said = [r for r in caplog.records if "email is off" in r.getMessage()]
    assert len(said) == 1
    counts = await coop.node.node.db.read(
        lambda conn: conn.execute(select(func.count()).select_from(mail_outbox)).scalar_one()
    )
    assert counts == 1  # the verification email, waiting for a mail server


async def test_invalid_addresses_and_choices_are_refused_and_change_nothing(
    network: Network, smtp: MailServer
) -> None:
    coop = await mail_coop(network, smtp)
    for body in (
        {"email": "not an address"},
        {"email": "élise@mail.test"},
        {"email": "a@b"},
        {"email": "x" * 300 + "@mail.test"},
        {"email": "ana@mail.test\r\nBcc: victim@mail.test"},
        {"email": 12},
        {"notifications": {"proposal_opened": "hourly"}},
        {"notifications": {"follow_request": "now"}},  # an admin's kind, for a member
        {"notifications": ["proposal_opened"]},
    ):
        response = await coop.node.request(
            "PATCH", "/api/v1/me/notifications", json=body, headers=coop.local["m1"]
        )
        assert response.status_code == 422, (body, response.text)
    shown = await coop.node.request("GET", "/api/v1/me/notifications", headers=coop.local["m1"])
    assert shown.json()["email"] is None
    assert set(shown.json()["notifications"].values()) == {"now"}
    assert await outbox(coop.node.node) == {}


async def test_verification_emails_are_limited_per_hour(network: Network, smtp: MailServer) -> None:
    coop = await mail_coop(network, smtp)
    statuses = []
    for i in range(5):
        response = await coop.node.request(
            "PATCH",
            "/api/v1/me/notifications",
            json={"email": f"try{i}@mail.test"},
            headers=coop.local["m1"],
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429, 429]


async def test_the_messages_are_well_formed_mime(network: Network, smtp: MailServer) -> None:
    """Put together without the email package: parsed back by it with no defect, CRLF
    line ends, no line over SMTP's 998 characters, and the same words."""
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "ana@mail.test", language="fr")
    title = "Élire le conseil « 2027 » : " + "très long titre " * 20
    await coop.propose("m0", title=title[:200].strip(), text="x")
    await network.settle()
    [mail] = smtp.received
    lines = mail.raw.split(b"\r\n")
    assert all(b"\n" not in line and len(line) <= 998 for line in lines)
    parsed = mail.message
    assert parsed.defects == []
    assert all(part.defects == [] for part in parsed.walk())
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert mail.subject.startswith("Élire le conseil « 2027 » : très long titre")
    assert "Élire le conseil « 2027 »" in mail.text
    assert "Élire le conseil « 2027 »" in mail.html


async def test_a_member_hears_that_her_comment_was_answered(
    network: Network, smtp: MailServer
) -> None:
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "ana@mail.test", proposal_opened="never")
    created = await coop.propose("m0", title="Tariff")
    await network.settle()

    async def comment(who: str, text: str, reply_to: str | None = None) -> Any:
        response = await coop.node.request(
            "POST",
            f"/api/v1/proposals/{created['id']}/comments",
            json={"text": text, "reply_to": reply_to},
            headers=coop.local[who],
        )
        assert response.status_code == 201, response.text
        return response.json()

    asked = await comment("m0", "Why Saturday?")
    await comment("m0", "And not Sunday?", asked["key"])  # her own follow-up: no email
    answer = await comment("m1", "Because of the **market**.", asked["key"])
    stranger = coop.mastodon.add_user("stranger")
    await coop.mastodon.reply(
        stranger, f"{coop.node.base}/actors/coop/inbox", asked["id"], "<p>Sunday is better</p>"
    )
    await network.settle()
    received = notifications(smtp, "ana@mail.test")
    assert sorted(m.subject for m in received) == [
        "Stranger answered your comment: Tariff",
        "m1 answered your comment: Tariff",
    ]
    from_member = next(m for m in received if m.subject.startswith("m1"))
    assert "Because of the market." in from_member.text
    assert f"/proposals/{created['id']}#comment-{answer['key']}" in from_member.text
    network.clock.advance(timedelta(minutes=5))
    await network.settle()
    assert len(notifications(smtp, "ana@mail.test")) == 2


async def test_a_refused_sender_is_the_settings_fault_and_is_tried_again(
    network: Network, smtp: MailServer
) -> None:
    """A 5xx to MAIL FROM (a relay that does not take this sender) fails no message for
    good: once the admin mends the settings, they go."""
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "ana@mail.test")
    smtp.recorder.sender_answer = "553 5.7.1 sender not allowed"
    await coop.propose("m0", title="Sender")
    await network.settle()
    assert smtp.received == []
    assert (await outbox(coop.node.node)).get("pending") == 1
    smtp.recorder.sender_answer = None
    network.clock.advance(timedelta(minutes=2))
    await worker.run_once(coop.node.node)
    assert len(smtp.received) == 1


async def test_a_worker_whose_lease_ran_out_records_nothing_over_the_next_ones(
    network: Network, smtp: MailServer
) -> None:
    coop = await mail_coop(network, smtp)
    await subscribe(coop, smtp, "m0", "ana@mail.test")
    node = coop.node.node
    await coop.propose("m0", title="Lease")
    from node.governance import worker as governance_worker
    from node.mail import events

    await governance_worker.run_once(node)
    await events.run_once(node)
    first_now = node.clock.now()
    [slow] = await node.db.write(
        lambda conn: store.claim(conn, now=first_now, lease=worker.LEASE, limit=10)
    )
    network.clock.advance(worker.LEASE + timedelta(seconds=1))
    await worker.run_once(node)  # another worker takes it and sends it
    assert len(smtp.received) == 1
    # The slow one comes back with a timeout: its record changes nothing.
    await node.db.write(
        lambda conn: store.mark_retry(
            conn, slow.id, error="timed out", at=first_now, claimed_until=slow.claimed_until
        )
    )
    assert await outbox(node) == {"sent": 2}
    network.clock.advance(timedelta(hours=1))
    await worker.run_once(node)
    assert len(smtp.received) == 1
