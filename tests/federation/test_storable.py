"""Text a peer sends is storable or refused: no NUL, no unpaired surrogate reaches a
database column, a log line or a UTF-8 response."""

from __future__ import annotations

import json

import pytest

from federation.errors import MalformedInput
from federation.jsonlimits import parse_object
from federation.storable import storable, unstorable_at


def encoded(document: object) -> bytes:
    # json.dumps escapes what is not ASCII: "\ud800" travels as the six characters \ud800.
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"type": "Create", "content": "a\ud800b"}, "content"),
        ({"type": "Create", "content": "a\x00b"}, "content"),
        ({"type": "Create", "\udfff": 1}, "a key"),
        ({"type": "Create", "key\x00": 1}, "a key"),
        ({"type": "Create", "object": {"tag": [{"name": "#x\udc00"}]}}, "object.tag[0].name"),
        ({"type": "Create", "object": {"to": ["ok", "\x00"]}}, "object.to[1]"),
    ],
)
def test_a_nul_or_an_unpaired_surrogate_anywhere_is_refused(document: object, where: str) -> None:
    with pytest.raises(MalformedInput, match="cannot be stored") as refused:
        parse_object(encoded(document))

    assert where in refused.value.reason
    # The reason itself is storable, and can be sent back as UTF-8.
    refused.value.reason.encode("utf-8")
    assert "\x00" not in refused.value.reason


def test_the_same_text_given_as_str_is_refused() -> None:
    with pytest.raises(MalformedInput, match="cannot be stored"):
        parse_object('{"content": "\\ud800"}')
    with pytest.raises(MalformedInput, match="cannot be stored"):
        parse_object('{"content": "\ud800"}')


def test_surrogates_encoded_as_utf_8_bytes_are_refused() -> None:
    # Python's JSON decoder reads bytes with "surrogatepass": ED A0 80 is U+D800.
    with pytest.raises(MalformedInput, match="cannot be stored"):
        parse_object(b'{"content": "\xed\xa0\x80"}')


def test_escaped_pairs_and_ordinary_text_are_kept() -> None:
    body = (
        b'{"content": "\\ud83d\\ude00 \\u00e9t\\u00e9 \\u003cp\\u003e \\\\ud800",'
        b' "k": "\xed\x95\x9c"}'
    )

    parsed = parse_object(body)

    assert parsed["content"] == "\U0001f600 \u00e9t\u00e9 <p> \\ud800"
    assert parsed["k"] == "\ud55c"


def test_storable_replaces_what_a_column_refuses_and_bounds_the_length() -> None:
    assert storable("ok \ud800 \x00 \U0001f600") == "ok \ufffd \ufffd \U0001f600"
    assert storable("abcdef", limit=3) == "abc"
    assert storable("plain") == "plain"


def test_unstorable_at_names_the_place_or_none() -> None:
    assert unstorable_at({"a": [1, "x", {"b": "\ud800"}]}) == "a[2].b"
    assert unstorable_at({"a": [1, "x", {"b": "fine"}]}) is None
