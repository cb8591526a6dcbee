"""Handing messages to the SMTP server the settings name, with aiosmtplib (asyncio, pure
Python, kept up: it refuses line breaks smuggled into commands).

A batch goes over one connection. Each message ends in one of three ways: sent; refused
for good (a 5xx answer to it: the address does not exist, say); or to be tried again (a
4xx answer, a server down, slow or gone mid-batch, or refused logins, which an admin
fixes in the settings).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import aiosmtplib

from node.mail.messages import Envelope
from node.settings import Settings

log = logging.getLogger(__name__)

# How long one message may take, from its MAIL FROM to the server's answer to its data
# (aiosmtplib's own timeout applies to each read and write, not to the whole).
MESSAGE_TIMEOUT = 30.0
CONNECT_TIMEOUT = 30.0
# Connections a batch goes over at once (from SHARED_FROM messages on): a relay takes a
# few from one client without counting it as abuse (Postfix's default is 50).
CONNECTIONS = 2
SHARED_FROM = 20


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    detail: str = ""


def _client(settings: Settings) -> aiosmtplib.SMTP:
    tls = settings.smtp_security
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=tls == "tls",
        # Required, not opportunistic: a server that stops offering STARTTLS (or a
        # machine in between that strips it) gets no password and no mail.
        start_tls=tls == "starttls",
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        timeout=CONNECT_TIMEOUT,
        tls_context=ssl.create_default_context() if tls != "none" else None,
        local_hostname=settings.domain.partition(":")[0],
    )


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        return min(r.code for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code
    return None


def describe(exc: BaseException) -> str:
    """What went wrong, in words an admin can act on."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"the SMTP server refused the login (smtp_username, smtp_password): {exc}"
    if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionError | OSError):
        return f"cannot connect to the SMTP server: {exc}"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return "the SMTP server did not answer in time"
    if isinstance(exc, aiosmtplib.SMTPException):
        return f"the SMTP server answered: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _classify(exc: BaseException) -> Result:
    """Refused for good only when the server refused this message's recipient or its
    data with a 5xx. A 5xx to the sender or the login (a wrong ``mail_from``, a relay
    that wants a login) is the settings' fault, not the message's: it is tried again
    once an admin mends them."""
    code = _code(exc)
    permanent = isinstance(exc, aiosmtplib.SMTPRecipientsRefused | aiosmtplib.SMTPDataError)
    if permanent and code is not None and 500 <= code < 600:
        return Result(Outcome.REFUSED, describe(exc))
    return Result(Outcome.RETRY, describe(exc))


async def send_batch(settings: Settings, messages: Sequence[Envelope]) -> list[Result]:
    """Hand the messages to the server; a result for each, in order. A large batch goes
    over :data:`CONNECTIONS` connections at once: each message is several round trips
    (MAIL, RCPT, DATA, the data), and one connection spends most of its time waiting
    for the server's answers."""
    lanes = CONNECTIONS if len(messages) >= SHARED_FROM else 1
    if lanes == 1:
        return await _send_over_one(settings, messages)
    parts = await asyncio.gather(
        *(_send_over_one(settings, messages[lane::lanes]) for lane in range(lanes))
    )
    results: list[Result] = [Result(Outcome.RETRY)] * len(messages)
    for lane, part in enumerate(parts):
        results[lane::lanes] = part
    return results


async def _send_over_one(settings: Settings, messages: Sequence[Envelope]) -> list[Result]:
    """Hand the messages to the server over one connection. A connection that fails
    leaves the messages not yet sent to be tried again."""
    results: list[Result] = []
    client = _client(settings)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT * 2):
            await client.connect()
    except Exception as exc:  # a server down, refused logins, a TLS failure: all retried
        failed = _classify(exc)
        return [Result(Outcome.RETRY, failed.detail)] * len(messages)
    try:
        for message in messages:
            try:
                async with asyncio.timeout(MESSAGE_TIMEOUT):
                    await client.sendmail(message.sender, [message.recipient], message.data)
            except aiosmtplib.SMTPServerDisconnected as exc:
                detail = describe(exc)
                results.append(Result(Outcome.RETRY, detail))
                break
            except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
                # Mid-transaction: the next answer read could be this one's. Hang up;
                # this message and the rest are tried again.
                results.append(Result(Outcome.RETRY, describe(exc)))
                client.close()
                break
            except (aiosmtplib.SMTPException, OSError) as exc:
                results.append(_classify(exc))
                if not client.is_connected:
                    break
                continue
            except ValueError as exc:  # an address aiosmtplib refuses to send to
                results.append(Result(Outcome.REFUSED, f"not a sendable message: {exc}"))
                continue
            results.append(Result(Outcome.SENT))
    finally:
        if client.is_connected:
            try:
                async with asyncio.timeout(5):
                    await client.quit()
            except Exception:  # the messages were handed over; a rude goodbye changes nothing
                client.close()
    missing = len(messages) - len(results)
    if missing:
        results.extend([Result(Outcome.RETRY, "the SMTP connection ended before it")] * missing)
    return results


async def send_one(settings: Settings, message: Envelope) -> Result:
    [result] = await send_batch(settings, [message])
    return result
