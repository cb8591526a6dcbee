"""Text that can be stored: no NUL, no unpaired surrogate.

JSON may carry both, escaped (``"\\u0000"``, ``"\\ud800"``), and Python's decoder turns
them into ``str`` that no database column and no UTF-8 encoder accepts: PostgreSQL
refuses NUL in text, and encoding a lone surrogate to UTF-8 raises, in SQLite's driver,
in psycopg and in every JSON response. A peer's document holding them is refused when it
is parsed (see :mod:`federation.jsonlimits`); text quoted from a peer into a reason or
a log line goes through :func:`storable` first.
"""

from __future__ import annotations

import re
from typing import Any

# Unpaired surrogates only: the decoder joins an escaped pair into one character.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Longest path (in characters) named in a refusal: keys are the peer's, of any length.
_MAX_PATH = 200


def storable(text: str, *, limit: int | None = None) -> str:
    """``text`` with each NUL and unpaired surrogate replaced by U+FFFD, cut to ``limit``
    characters."""
    if UNSTORABLE.search(text) is not None:
        text = UNSTORABLE.sub("\ufffd", text)
    return text if limit is None else text[:limit]


def unstorable_at(document: Any) -> str | None:
    """Where in a parsed JSON document a key or a string holds a NUL or an unpaired
    surrogate (``object.tag[0].name``, ``a key of object``), or None if nowhere."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if UNSTORABLE.search(value) is not None:
                return _shown(path or "the document")
        elif isinstance(value, dict):
            for key, child in value.items():
                if UNSTORABLE.search(key) is not None:
                    return _shown(f"a key of {path or 'the top level'}")
                stack.append((child, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            stack.extend((child, f"{path}[{n}]") for n, child in enumerate(value))
    return None


def _shown(path: str) -> str:
    return storable(path, limit=_MAX_PATH)
