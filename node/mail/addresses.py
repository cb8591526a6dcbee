"""What a member does about email: give an address (verified by a link before any
notification goes there), choose per kind (at once, daily digest, never), unsubscribe
with one click from a message; and what an admin does: send a test email."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from node import i18n
from node.errors import Invalid, NotFound, TooManyRequests
from node.mail import messages, smtp, store, tokens
from node.mail.kinds import ALL, TEST, VERIFY, Frequency, Kind, kinds_for
from node.members import store as members_store
from node.runtime import Node
from node.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

VERIFY_FOR = timedelta(hours=48)
# Verification emails one member may ask for in an hour: a form that sends mail to any
# address typed into it must not become a way to flood someone's mailbox.
VERIFY_PER_HOUR = 3
MAX_ADDRESS = 254
# Matched whole (fullmatch): "$" alone would let a line break end the address.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_address(raw: str) -> str:
    """The address as it will be kept, or :class:`Invalid` saying what is wrong. ASCII
    only: an address with other characters needs SMTPUTF8 all the way, which few
    co-ops' mail servers offer."""
    address = raw.strip()
    if not address:
        raise Invalid("give an email address", field="email")
    local, at, domain = address.rpartition("@")
    if (
        len(address) > MAX_ADDRESS
        or not at
        or not address.isascii()
        or not _LOCAL.fullmatch(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
        or "." not in domain
        or not all(_LABEL.fullmatch(label) for label in domain.split("."))
    ):
        raise Invalid(
            "this is not an email address such as name@example.org (letters without "
            "accents, one @)",
            field="email",
        )
    return f"{local}@{domain.lower()}"


def _language(language: str) -> str:
    return language if language in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class Preferences:
    mail_on: bool
    address: str | None
    verified: bool
    language: str
    kinds: tuple[Kind, ...]
    chosen: dict[str, Frequency]

    def to_json(self) -> dict[str, object]:
        return {
            "mail": self.mail_on,
            "email": self.address,
            "verified": self.verified,
            "language": self.language,
            "notifications": {kind: str(self.chosen[kind]) for kind in self.kinds},
        }


async def preferences(node: Node, member_id: int) -> Preferences:
    def read(conn: Connection) -> Preferences:
        member = members_store.get_member(conn, member_id)
        found = store.recipient(conn, member_id)
        return Preferences(
            mail_on=node.settings.mail_on,
            address=None if found is None else found.address,
            verified=found is not None and found.verified,
            language=i18n.DEFAULT_LANGUAGE if found is None else found.language,
            kinds=kinds_for(member.role),
            chosen=store.preferences(conn, member_id),
        )

    return await node.db.read(read)


async def change(
    node: Node,
    member_id: int,
    *,
    email: str | None = None,
    language: str | None = None,
    chosen: dict[str, str] | None = None,
) -> Preferences:
    """Apply what the member changed: a new address (a verification email goes to it),
    an empty one (no email at all), the language of the emails, choices per kind."""
    address = None if email is None else (email.strip() and check_address(email))
    wanted = _frequencies(chosen or {})
    now = node.clock.now()

    def write(conn: Connection) -> bool:
        member = members_store.get_member(conn, member_id)
        allowed = kinds_for(member.role)
        refused = [kind for kind in wanted if kind not in allowed]
        if refused:
            raise Invalid(f"no such notification for this member: {refused[0]}", field=refused[0])
        store.set_preferences(conn, member_id, wanted)
        current = store.recipient(conn, member_id)
        if address == "":
            if current is not None:
                store.remove_address(conn, member_id)
            return False
        if address is not None and (current is None or current.address != address):
            kept = language or (current.language if current is not None else None)
            _queue_verification(
                node, conn, member_id, address, _language(kept or "en"), now, new=True
            )
            return True
        if language is not None and current is not None:
            store.set_language(conn, member_id, _language(language), now=now)
        return False

    if await node.db.write(write):
        node.mail_wakeup.set()
    return await preferences(node, member_id)


def _frequencies(chosen: dict[str, str]) -> dict[str, Frequency]:
    found: dict[str, Frequency] = {}
    for kind, value in chosen.items():
        if kind not in Kind.__members__.values():
            raise Invalid(f"no such notification: {kind}", field=str(kind)[:64])
        if value not in Frequency.__members__.values():
            raise Invalid(f"{kind}: choose now, daily or never", field=kind)
        found[kind] = Frequency(value)
    return found


def _queue_verification(
    node: Node,
    conn: Connection,
    member_id: int,
    address: str,
    language: str,
    now: datetime,
    *,
    new: bool,
) -> None:
    if store.queued_for(conn, member_id, VERIFY, since=now - timedelta(hours=1)) >= VERIFY_PER_HOUR:
        raise TooManyRequests(
            "too many verification emails in the last hour; try again later",
            retry_after=3600,
        )
    token, token_hash = tokens.new_verify_token()
    if new:
        store.set_address(
            conn,
            member_id,
            address=address,
            language=language,
            verify_hash=token_hash,
            verify_expires=now + VERIFY_FOR,
            secret=tokens.new_secret(),
            now=now,
        )
    else:
        store.new_verify_token(
            conn, member_id, verify_hash=token_hash, expires=now + VERIFY_FOR, now=now
        )
    store.queue(
        conn,
        [
            store.NewMail(
                member_id=member_id,
                address=address,
                kind=VERIFY,
                language=language,
                params={
                    "coop": node.settings.name,
                    "url": f"{node.settings.base_url}/mail/verify/{token}",
                },
                dedupe=None,
                message_id=messages.new_message_id(node.settings),
            )
        ],
        now=now,
    )


async def send_verification_again(node: Node, member_id: int) -> None:
    now = node.clock.now()

    def write(conn: Connection) -> None:
        current = store.recipient(conn, member_id)
        if current is None:
            raise Invalid("give an email address first", field="email")
        if current.verified:
            raise Invalid("this address is already verified", field="email")
        _queue_verification(
            node, conn, member_id, current.address, current.language, now, new=False
        )

    await node.db.write(write)
    node.mail_wakeup.set()


async def verify(node: Node, token: str) -> bool:
    """Verify the address the token was sent to; False when it is unknown or expired."""
    if not (0 < len(token) <= tokens.MAX_TOKEN) or not token.isascii():
        return False
    now = node.clock.now()
    token_hash = tokens.hash_token(token)
    return await node.db.write(lambda conn: store.verify(conn, token_hash, now=now)) is not None


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    member_id: int
    kind: str  # a Kind, or ALL


async def check_unsubscribe(node: Node, token: str) -> Unsubscribed:
    """What the token unsubscribes from, or :class:`NotFound`: changes nothing."""
    found = tokens.read_unsubscribe(token)
    if found is None or (found.kind != ALL and found.kind not in Kind.__members__.values()):
        raise NotFound("this unsubscribe link is not valid (any more)")
    recipient = await node.db.read(lambda conn: store.recipient(conn, found.member_id))
    if recipient is None or not found.valid_under(recipient.secret):
        raise NotFound("this unsubscribe link is not valid (any more)")
    return Unsubscribed(found.member_id, found.kind)


async def unsubscribe(node: Node, token: str) -> Unsubscribed:
    """Stop the emails the token names (one kind, or all); the same again is harmless."""
    done = await check_unsubscribe(node, token)
    kinds = list(Kind) if done.kind == ALL else [Kind(done.kind)]

    def write(conn: Connection) -> None:
        store.set_preferences(conn, done.member_id, {kind: Frequency.NEVER for kind in kinds})
        # What already waits for it goes too: the next summary is not the last one.
        store.forget_waiting(conn, done.member_id, [str(kind) for kind in kinds])

    await node.db.write(write)
    return done


def trial_message(settings: Settings, address: str, language: str) -> messages.Envelope:
    rendered = messages.render(
        TEST, _language(language), {"coop": settings.name, "url": settings.base_url}
    )
    return messages.envelope(
        settings,
        rendered,
        to=check_address(address),
        message_id=messages.new_message_id(settings),
        language=_language(language),
    )


async def send_test(settings: Settings, address: str, language: str = "en") -> smtp.Result:
    """Send a test email at once (not through the outbox): what went wrong, if anything."""
    if not settings.mail_on:
        return smtp.Result(
            smtp.Outcome.RETRY,
            "email is off: set smtp_host (and smtp_port, smtp_security, smtp_username, "
            "smtp_password) in coopnode.toml or COOPNODE_SMTP_* variables",
        )
    return await smtp.send_one(settings, trial_message(settings, address, language))


async def member_of(node: Node, actor_pk: int | None) -> int:
    """The member behind a token or a session's actor; :class:`Invalid` for a token
    that is not a member's (the co-op's own admin token)."""
    found = (
        None
        if actor_pk is None
        else await node.db.read(lambda conn: members_store.member_of_actor(conn, actor_pk))
    )
    if found is None:
        raise Invalid("this token is not a member's: notifications are chosen by members")
    return found
