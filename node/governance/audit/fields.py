"""One published field at a time: read and checked, or an :class:`AuditError` naming it.

Nothing a host publishes is trusted: every value the audit uses is read through one of
these functions, so that a missing or malformed field is a clear error saying which
field and what was expected, never a traceback. The two writers at the end turn a time
and a fraction back into the text the host publishes them as.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from node.errors import NodeError

_FRACTION = re.compile(r"(0|[1-9][0-9]{0,17})(/[1-9][0-9]{0,17})?", re.ASCII)


class AuditError(NodeError):
    """The proposal could not be reached or read: nothing can be said about its result.
    ``field`` names the published field that is missing or malformed, where there is one.

    The host's answer is what is wrong, hence 502 (Bad Gateway) where it reaches HTTP."""

    status = 502
    code = "audit_failed"

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


def fraction(value: object, name: str) -> Fraction:
    """A fraction written as ``"p/q"`` (or a whole number), as the host writes them."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AuditError(f'a fraction written as "p/q", not {quoted(value)}', field=name)
    text = str(value)
    if not _FRACTION.fullmatch(text):
        raise AuditError(f'a fraction written as "p/q", not {quoted(value)}', field=name)
    return Fraction(text)


def integer(value: object, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AuditError(f"a whole number of at least {minimum}, not {quoted(value)}", field=name)
    return value


def boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise AuditError(f"true or false, not {quoted(value)}", field=name)
    return value


def string(value: object, name: str, *, limit: int = 2048) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise AuditError(
            f"a non-empty string (at most {limit} characters), not {quoted(value)}", field=name
        )
    return value


def stamp(value: object, name: str) -> datetime:
    """An ISO 8601 time with its time zone."""
    if not isinstance(value, str) or len(value) > 64:
        raise AuditError(f"an ISO 8601 time, not {quoted(value)}", field=name)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AuditError(f"an ISO 8601 time, not {quoted(value)}", field=name) from None
    if moment.tzinfo is None:
        raise AuditError(f'a time with its time zone ("Z"), not {quoted(value)}', field=name)
    return moment


def required(document: Mapping[str, Any], name: str, where: str = "") -> Any:
    """``document[name]``, which must be there and not null; ``where`` prefixes the
    field's name in the error (``"outcome."``)."""
    if name not in document or document[name] is None:
        raise AuditError("missing", field=f"{where}{name}")
    return document[name]


def quoted(value: object) -> str:
    """A published value as an error shows it: short, and "nothing" for null."""
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def when(moment: datetime) -> str:
    """A time as the host publishes it: UTC, ISO 8601, ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fraction_text(value: Fraction | None) -> str:
    """A fraction as the host publishes it (``"2/3"``, ``"1"``), or "none"."""
    if value is None:
        return "none"
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )
