"""Parsing JSON from peers without letting its shape hurt us.

Python's JSON decoder recurses once per nesting level: a body of ``[[[[…`` deeper than
the interpreter's recursion limit raises ``RecursionError``, and a document nested
hundreds of levels deep makes every later recursive walk over it fragile. We parse with
the fast C decoder, turn ``RecursionError`` into a clear refusal, then measure the depth
iteratively and refuse anything deeper than any real ActivityStreams document needs.
"""

from __future__ import annotations

import json
from typing import Any

from federation.errors import MalformedInput

MAX_DEPTH = 64


def exceeds_depth(document: object, max_depth: int) -> bool:
    """Whether ``document`` nests arrays and objects more than ``max_depth`` levels."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _openers(body: bytes | str) -> int:
    """How many ``{`` and ``[`` the text holds: a bound on its depth that costs far less
    than walking the parsed document, and small for nearly every real activity."""
    if isinstance(body, bytes):
        return body.count(b"{") + body.count(b"[")
    return body.count("{") + body.count("[")


def parse_object(body: bytes | str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a JSON object from a peer; :class:`MalformedInput` says what is wrong."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise MalformedInput(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise MalformedInput(f"invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedInput("the JSON body is not an object")
    if _openers(body) > max_depth and exceeds_depth(document, max_depth):
        raise MalformedInput(f"JSON nested deeper than {max_depth} levels")
    return document
