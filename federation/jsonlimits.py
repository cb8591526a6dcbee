"""Parsing JSON from peers without letting its shape hurt us.

Python's JSON decoder recurses once per nesting level: a body of ``[[[[…`` deeper than
the interpreter's recursion limit raises ``RecursionError``, and a document nested
hundreds of levels deep makes every later recursive walk over it fragile. We parse with
the fast C decoder, turn ``RecursionError`` into a clear refusal, then measure the depth
iteratively and refuse anything deeper than any real ActivityStreams document needs.

A document is also refused when a key or a string holds a NUL or an unpaired surrogate
(see :mod:`federation.storable`): nothing could store it, and a reason quoting it could
not even be recorded. Only bodies where such text may hide are walked for it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from federation.errors import MalformedInput
from federation.storable import unstorable_at

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


# Where a NUL or an unpaired surrogate may hide: an escape of NUL or of a surrogate (most
# escaped surrogates are pairs, which are fine), a raw NUL, or a raw surrogate (in a
# str; in bytes, the decoder reads ED A0..BF as one, with "surrogatepass"). Nothing else
# decodes to one, so most bodies are not walked, and the look costs about a microsecond.
_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_ESCAPE_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_ENCODED_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")


def _may_hold_unstorable(body: bytes | str) -> bool:
    if isinstance(body, bytes):
        if b"\x00" in body or (b"\xed" in body and _ENCODED_SURROGATE.search(body)):
            return True
        return b"\\" in body and _ESCAPE_BYTES.search(body) is not None
    if "\x00" in body:
        return True
    if not body.isascii():
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return "\\" in body and _ESCAPE.search(body) is not None


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
    if _may_hold_unstorable(body):
        where = unstorable_at(document)
        if where is not None:
            raise MalformedInput(
                f"the JSON holds a NUL or an unpaired surrogate at {where}: "
                "such text cannot be stored"
            )
    return document
