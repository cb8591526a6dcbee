"""Emails rendered from ``node/templates/mail``, in the recipient's language: a subject,
a plain text body and an HTML one, from one template per kind (its ``subject``,
``message`` and ``action`` blocks) and a layout per format.

Its functions import what they use when they run: Jinja loads with the first email.
"""

from __future__ import annotations

import binascii
import functools
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from federation.resources import on_disk
from node import i18n
from node.offers.model import UNIT_BY_WIRE_NAME, UNITS
from node.settings import Settings

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES_DIR = files("node") / "templates"
SUBJECT_MAX = 200


@functools.cache
def environment(language: str, html: bool) -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(on_disk(TEMPLATES_DIR)),
        # The plain text part is not HTML: nothing in it is escaped, nothing read as markup.
        autoescape=html,  # noqa: S701
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        undefined=StrictUndefined,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        i18n.translations(language), newstyle=True
    )
    env.globals["lang"] = language
    env.filters["day"] = lambda moment: i18n.format_day(moment, language)
    env.filters["datetime"] = lambda moment: i18n.format_moment(moment, language)
    env.filters["unit"] = lambda unit: unit_label(unit, language)
    return env


def unit_label(unit: object, language: str) -> str:
    """A unit, by our name or its wire name, as members read it."""
    if not isinstance(unit, str):
        return ""
    found = UNITS.get(unit) or UNIT_BY_WIRE_NAME.get(unit)
    return unit if found is None else found.labels.get(language, unit)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def _values(params: dict[str, Any]) -> dict[str, Any]:
    """The stored params as the templates read them: ``*_at`` and ``since`` as dates."""
    values = dict(params)
    for name, value in params.items():
        if (name.endswith("_at") or name == "since") and isinstance(value, str):
            try:
                values[name] = datetime.fromisoformat(value)
            except ValueError:
                values[name] = value
    return values


def subject_of(kind: str, language: str, params: dict[str, Any]) -> str:
    env = environment(language, False)
    template = env.get_template(f"mail/{kind}.txt")
    context = template.new_context({"layout": "mail/layout.txt", "html": False, **_values(params)})
    raw = "".join(template.blocks["subject"](context))
    # One line (a title from a form or a peer may hold line breaks), of a sane length.
    subject = " ".join(raw.split())
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1] + "…"


def render(kind: str, language: str, params: dict[str, Any]) -> Rendered:
    """The message of ``kind`` in ``language``; ``params`` carry what it says and its
    links (``url``, ``settings_url``, ``unsubscribe_url``)."""
    language = language if language in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE
    values = _values(params)
    subject = subject_of(kind, language, params)
    text_env, html_env = environment(language, False), environment(language, True)
    common = {"subject": subject, "unsubscribe_url": "", "settings_url": "", **values}
    text = text_env.get_template(f"mail/{kind}.txt").render(
        {**common, "layout": "mail/layout.txt", "html": False}
    )
    html = html_env.get_template(f"mail/{kind}.txt").render(
        {**common, "layout": "mail/layout.html", "html": True}
    )
    return Rendered(subject=subject, text=text.strip() + "\n", html=html)


# What stands for a recipient's unsubscribe link while a message is rendered once for
# everyone it goes to; each copy gets its own link in its place.
UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.invalid/0"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message as handed to the SMTP server: the envelope and the bytes."""

    sender: str
    recipient: str
    data: bytes


def _header(name: str, value: str) -> str:
    if value.isascii():
        return f"{name}: {value}"
    encoded = Header(value, "utf-8", maxlinelen=76, header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}"


def _qp(text: str) -> bytes:
    """Quoted-printable, with CRLF line ends: readable, under SMTP's line limit, and the
    same bytes whether or not the server takes 8-bit mail."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(body, istext=True).replace(b"\n", b"\r\n")


@functools.cache
def _from(sender: str) -> tuple[str, str]:
    """The From header and the envelope's sender, from the ``mail_from`` setting."""
    name, address = parseaddr(sender)
    return formataddr((name, address), charset="utf-8"), address


def envelope(
    settings: Settings,
    rendered: Rendered,
    *,
    to: str,
    message_id: str,
    language: str,
    list_id: str | None = None,
    unsubscribe_url: str | None = None,
) -> Envelope:
    """The message's bytes: ``multipart/alternative``, plain text then HTML, both
    quoted-printable. Notifications carry RFC 2369/8058 one-click unsubscribe headers;
    the verification and test emails do not. Put together here rather than with
    ``email.message``, whose header objects cost about a millisecond a message: a
    proposal opening in a co-op of thousands is thousands of them."""
    from_header, sender = _from(settings.mail_sender)
    link = unsubscribe_url or ""
    text = rendered.text.replace(UNSUBSCRIBE_PLACEHOLDER, link)
    html = rendered.html.replace(UNSUBSCRIBE_PLACEHOLDER, link)
    boundary = "=_" + secrets.token_hex(12)
    headers = [
        f"From: {from_header}",
        f"To: {to}",
        _header("Subject", rendered.subject),
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        f"Content-Language: {language}",
        # RFC 3834: no vacation replies to a notification.
        "Auto-Submitted: auto-generated",
    ]
    if list_id:
        host = settings.domain.partition(":")[0]
        headers.append(f"List-Id: <{list_id}.{host}>")
    if unsubscribe_url:
        headers.append(f"List-Unsubscribe: <{unsubscribe_url}>")
        headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    part = "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    data = b"".join(
        [
            "\r\n".join(headers).encode("utf-8"),
            b"\r\n\r\n",
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n{part}".encode(),
            _qp(text),
            f"\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n{part}".encode(),
            _qp(html),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return Envelope(sender=sender, recipient=to, data=data)


def new_message_id(settings: Settings) -> str:
    from email.utils import make_msgid  # the domain given: no DNS lookup of this host

    return make_msgid(domain=settings.domain.partition(":")[0])
