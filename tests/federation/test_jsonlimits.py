"""JSON from peers: deeply nested or malformed bodies are refused clearly."""

from __future__ import annotations

import pytest

from federation.errors import MalformedInput
from federation.jsonlimits import MAX_DEPTH, parse_object


def nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def test_an_ordinary_activity_parses() -> None:
    body = b'{"type": "Create", "object": {"tag": [{"type": "Hashtag"}], "to": ["x"]}}'

    assert parse_object(body)["type"] == "Create"


def test_nesting_up_to_the_limit_is_accepted_and_one_more_level_refused() -> None:
    assert parse_object(nested(MAX_DEPTH))
    with pytest.raises(MalformedInput, match="nested deeper"):
        parse_object(nested(MAX_DEPTH + 1))


def test_a_body_nested_past_the_interpreters_recursion_limit_is_refused() -> None:
    body = b"[" * 200_000 + b"]" * 200_000

    with pytest.raises(MalformedInput, match="nested deeper"):
        parse_object(b'{"a":' + body + b"}")


def test_brackets_inside_strings_do_not_count() -> None:
    assert parse_object(b'{"content": "' + b"[[[[{{{{" * 100 + b'"}')


@pytest.mark.parametrize("body", [b"", b"{", b"[1]", b'"text"', b"\xff\xfe", b"{'a': 1}"])
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedInput):
        parse_object(body)


def test_many_shallow_objects_are_walked_and_accepted() -> None:
    # More brackets than the depth limit, so the quick count does not settle it: the walk
    # does, and a wide document is not a deep one.
    wide = "[" + ",".join(["{}"] * (MAX_DEPTH * 4)) + "]"
    assert parse_object(f'{{"items": {wide}}}'.encode())["items"] == [{}] * (MAX_DEPTH * 4)


def test_a_str_body_is_measured_like_bytes() -> None:
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(MalformedInput, match="deeper"):
        parse_object(f'{{"a": {deep}}}')
