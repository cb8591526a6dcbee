"""Emails rendered from ``node/templates/mail``, in the recipient's language: a subject,
a plain text body and an HTML one, from one template per kind (its ``subject``,
``message`` and ``action`` blocks) and a layout per format.

Its functions import what they use when they run: Jinja loads with the first email.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
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


def email(
    settings: Settings,
    rendered: Rendered,
    *,
    to: str,
    message_id: str,
    language: str,
    list_id: str | None = None,
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    """The message as handed to the SMTP server. Notifications carry RFC 2369/8058
    one-click unsubscribe headers; the verification and test emails do not."""
    message = EmailMessage()
    message["From"] = settings.mail_sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    # RFC 3834: no vacation replies to a notification.
    message["Auto-Submitted"] = "auto-generated"
    if list_id:
        host = settings.domain.partition(":")[0]
        message["List-Id"] = f"<{list_id}.{host}>"
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Quoted-printable: readable, under SMTP's line limit, and the same bytes whether or
    # not the server takes 8-bit mail.
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    # After the content: setting it clears the Content-* headers.
    message["Content-Language"] = language
    return message


def new_message_id(settings: Settings) -> str:
    from email.utils import make_msgid  # the domain given: no DNS lookup of this host

    return make_msgid(domain=settings.domain.partition(":")[0])
