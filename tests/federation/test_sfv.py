"""Structured fields (RFC 8941) as the signature and digest headers use them: every kind
of member read, anything RFC 8941 refuses refused, and values written back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from federation.errors import MalformedInput
from federation.sfv import (
    InnerList,
    Item,
    Token,
    parse_dictionary,
    serialize_item,
    serialize_params,
    serialize_string,
)


def test_a_dictionary_with_every_kind_of_member() -> None:
    members = parse_dictionary(
        'a=1, b=2;x=1;y=2, c=(a   b   c), d, e=-1.5, f=?0, g=:aGk=:, h="q\\"s", i=*tok/en:1',
        "Example-Dict",
    )

    assert members == {
        "a": Item(1),
        "b": Item(2, (("x", 1), ("y", 2))),
        "c": InnerList((Item(Token("a")), Item(Token("b")), Item(Token("c")))),
        "d": Item(True),
        "e": Item(Decimal("-1.5")),
        "f": Item(False),
        "g": Item(b"hi"),
        "h": Item('q"s'),
        "i": Item(Token("*tok/en:1")),
    }
    assert isinstance(members["c"], InnerList)
    assert isinstance(members["c"].items[0].value, Token)


def test_an_empty_field_is_an_empty_dictionary() -> None:
    assert parse_dictionary("", "Signature") == {}


@pytest.mark.parametrize(
    "value",
    [
        'sig1=("@method"',
        'sig1=("@method"),',
        'sig1=("@method") x',
        'sig1=("@method");created=1;created=2',
        'sig1=("@method"), sig1=("@path")',
        'Sig1=("@method")',
        'sig1=("@méthod")',
        'sig1=("a\\b")',
        'sig1=("a\tb")',
        'sig1=("@method"("@path"))',
        'sig1=("@method");created=1234567890123456',
        'sig1=("@method");created=1.2345',
        'sig1=("@method");created=?2',
        "sig1=:not base64!:",
        "sig1=:aGk",
    ],
)
def test_malformed_structured_fields_are_refused(value: str) -> None:
    with pytest.raises(MalformedInput, match="RFC 8941"):
        parse_dictionary(value, "Signature-Input")


def test_a_byte_sequence_may_leave_out_its_padding() -> None:
    assert parse_dictionary("a=:aGk:", "Example-Dict") == {"a": Item(b"hi")}


def test_a_field_too_long_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(MalformedInput, match="characters long"):
        parse_dictionary("a=" + "1" * 16 * 1024, "Example-Dict")


def test_items_and_parameters_are_written_as_rfc_8941_writes_them() -> None:
    assert serialize_item(Item(b"hi", (("a", 1), ("b", True)))) == ":aGk=:;a=1;b"
    assert serialize_item(Item(Decimal("-1.50"))) == "-1.5"
    assert serialize_item(Item(Token("*tok/en:1"))) == "*tok/en:1"
    assert serialize_params((("created", 1), ("keyid", "k"))) == ';created=1;keyid="k"'
    assert serialize_string('q"s\\') == '"q\\"s\\\\"'


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (Item(10**15), "out of range"),
        (Item(Decimal("1234567890123.5")), "out of range"),
        (Item(Token("1a")), "not a valid token"),
        (Item("é"), "cannot hold"),
    ],
)
def test_values_a_structured_field_cannot_hold_are_not_written(item: Item, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        serialize_item(item)
