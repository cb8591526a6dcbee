"""What members type into an order (the buyer's note, the seller's answer): plain text,
bounded, and storable on every engine."""

from __future__ import annotations

from node.errors import Invalid

MAX_NOTE_LENGTH = 2_000


def clean_note(note: object, *, field: str = "note") -> str:
    if note is None:
        return ""
    if not isinstance(note, str):
        raise Invalid("write the note as text", field=field)
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise Invalid(f"a note is at most {MAX_NOTE_LENGTH} characters", field=field)
    if "\x00" in note or any(0xD800 <= ord(c) <= 0xDFFF for c in note):
        raise Invalid("the note holds characters no text may hold", field=field)
    return note
