"""Comments on the wire: a member's comment is a ``Note`` ``inReplyTo`` the proposal (or
the comment it answers), its ``context`` the thread's root, public, with its Markdown
source; and a peer's ``Note``, read field by field before anything is kept.

A peer's Note is hostile until read: each field's type is checked, its text bounded,
its HTML reduced to the allow-list, and its author must be on its id's server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from federation.errors import MalformedInput
from federation.jsonld import AS_CONTEXT_URL
from node.documents import PUBLIC
from node.offers import publish
from node.offers.markdown import sanitise_html

MAX_CONTENT = 20_000  # characters of HTML, after sanitising
MAX_SOURCE = 5_000  # what a member may type
PUBLIC_NAMES = frozenset({PUBLIC, "as:Public", "Public"})


def note(
    *,
    uri: str,
    author: str,
    in_reply_to: str,
    thread: str,
    content: str,
    source: str,
    published: datetime,
    url: str,
    cc: list[str],
) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT_URL,
        "id": uri,
        "type": "Note",
        "attributedTo": author,
        "inReplyTo": in_reply_to,
        "context": thread,
        "content": content,
        "source": {"content": source, "mediaType": "text/markdown"},
        "published": _iso(published),
        "url": url,
        "to": [PUBLIC],
        "cc": cc,
    }


def tombstone(uri: str, deleted: datetime) -> dict[str, Any]:
    return publish.tombstone(uri, "Note", deleted.astimezone(UTC))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class PeerNote:
    uri: str
    author: str
    in_reply_to: str
    context: str | None
    content: str
    published: datetime | None


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _url(value: str | None, field: str) -> str:
    if value is None or not 0 < len(value) <= 2048 or not value.isprintable():
        raise MalformedInput(f"the note's {field} is not an id")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise MalformedInput(f"the note's {field} is not an http(s) URL")
    return value


def _addressed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value[:200] if isinstance(v, str)]
    return []


def is_public(document: dict[str, Any]) -> bool:
    """Public or unlisted (the Public collection in ``to`` or ``cc``): a followers-only
    or direct reply is not shown to a whole co-op."""
    named = _addressed(document.get("to")) + _addressed(document.get("cc"))
    return any(name in PUBLIC_NAMES for name in named)


def read_note(document: Any) -> PeerNote:
    """A peer's comment, or :class:`MalformedInput` naming what is wrong."""
    if not isinstance(document, dict) or document.get("type") != "Note":
        raise MalformedInput("a comment is a Note")
    uri = _url(_id(document.get("id")), "id")
    author = _url(_id(document.get("attributedTo")), "attributedTo")
    if urlsplit(author).netloc != urlsplit(uri).netloc:
        raise MalformedInput("the note's author is not on its id's server")
    in_reply_to = _url(_id(document.get("inReplyTo")), "inReplyTo")
    context = document.get("context")
    context_id = _id(context) if isinstance(context, str | dict) else None
    content = document.get("content")
    if not isinstance(content, str) or not content.strip():
        raise MalformedInput("the note has no content")
    if len(content) > MAX_CONTENT * 5:
        raise MalformedInput("the note's content is too long")
    if "\x00" in content:
        raise MalformedInput("the note's content holds a NUL")
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedInput("the note's content is not valid text") from exc
    clean = sanitise_html(content)
    if not clean or len(clean) > MAX_CONTENT:
        raise MalformedInput("the note's content is empty or too long once cleaned")
    published = None
    raw = document.get("published")
    if isinstance(raw, str) and len(raw) <= 64:
        try:
            published = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if published.tzinfo is None:
                published = published.replace(tzinfo=UTC)
            # In UTC here: a date at the edge of the calendar with an offset fails now,
            # as a refusal of that date, not later in the database.
            published = published.astimezone(UTC)
        except (ValueError, OverflowError):
            published = None
    return PeerNote(
        uri=uri,
        author=author,
        in_reply_to=in_reply_to,
        context=context_id if context_id and len(context_id) <= 2048 else None,
        content=clean,
        published=published,
    )
