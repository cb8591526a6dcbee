"""A strict reader and writer for HTTP Structured Field Values (RFC 8941).

Only what the signature and digest headers need: :func:`parse_dictionary` reads a
Dictionary (``Signature-Input``, ``Signature``, ``Content-Digest``) into :class:`Item`
and :class:`InnerList` values, and the ``serialize_*`` functions write items, strings and
parameters back. Reading is strict: anything RFC 8941 would reject is refused, and so are
duplicate dictionary keys and parameters (RFC 8941 keeps the last one; RFC 9421 §4 wants
labels unique, and a repeated key is more likely an attack than a mistake worth
repairing). Errors are :class:`~federation.errors.MalformedInput`, naming the field.
"""

from __future__ import annotations

import base64
import binascii
import string
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NoReturn, TypeAlias

from federation.errors import MalformedInput

__all__ = [
    "BareItem",
    "InnerList",
    "Item",
    "Params",
    "Token",
    "parse_dictionary",
    "serialize_item",
    "serialize_params",
    "serialize_string",
]

# Far more than any field read here needs (a Signature-Input covering every component, the
# Signature of a 16384-bit RSA key), and a bound on the work a peer can ask of the parser.
_MAX_FIELD_CHARS = 16 * 1024


class Token(str):
    """An RFC 8941 Token (a bare word), as opposed to a quoted String."""

    __slots__ = ()


BareItem: TypeAlias = bool | int | Decimal | str | bytes
Params: TypeAlias = tuple[tuple[str, BareItem], ...]


@dataclass(frozen=True, slots=True)
class Item:
    """An Item: a bare value with its parameters, in the order written."""

    value: BareItem
    params: Params = ()


@dataclass(frozen=True, slots=True)
class InnerList:
    """An Inner List: parenthesised items, with parameters of its own."""

    items: tuple[Item, ...]
    params: Params = ()


_KEY_FIRST = frozenset(string.ascii_lowercase + "*")
_KEY_CHARS = frozenset(string.ascii_lowercase + string.digits + "_-.*")
_TCHAR = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_TOKEN_CHARS = _TCHAR | {":", "/"}
_BASE64_CHARS = frozenset(string.ascii_letters + string.digits + "+/=")


def parse_dictionary(value: str, field: str) -> dict[str, Item | InnerList]:
    """Parse an RFC 8941 Dictionary; ``field`` names the header in error messages."""
    if len(value) > _MAX_FIELD_CHARS:
        raise MalformedInput(f"{field} is {len(value)} characters long, over {_MAX_FIELD_CHARS}")
    return _Parser(value, field).dictionary()


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.pos = 0
        self.field = field

    def fail(self, problem: str) -> NoReturn:
        raise MalformedInput(
            f"{self.field} is not a valid structured field (RFC 8941): {problem} "
            f"at character {self.pos}"
        )

    def peek(self) -> str:
        """The next character, or "" at the end (beware: "" is in every string)."""
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at(self, chars: Iterable[str]) -> bool:
        char = self.peek()
        return bool(char) and char in chars

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def dictionary(self) -> dict[str, Item | InnerList]:
        if not self.text.isascii():
            self.fail("non-ASCII character")
        members: dict[str, Item | InnerList] = {}
        self.skip(" ")
        while self.pos < len(self.text):
            key = self.key()
            if key in members:
                self.fail(f"key {key!r} appears twice")
            if self.peek() == "=":
                self.pos += 1
                members[key] = self.inner_list() if self.peek() == "(" else self.item()
            else:
                members[key] = Item(True, self.params())
            self.skip(" \t")
            if self.pos == len(self.text):
                break
            if self.peek() != ",":
                self.fail(f"expected ',' after member {key!r}")
            self.pos += 1
            self.skip(" \t")
            if self.pos == len(self.text):
                self.fail("trailing comma")
        return members

    def inner_list(self) -> InnerList:
        self.pos += 1
        items: list[Item] = []
        while self.pos < len(self.text):
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return InnerList(tuple(items), self.params())
            items.append(self.item())
            if not self.at(" )"):
                self.fail("expected a space or ')' in an inner list")
        self.fail("inner list is not closed")

    def item(self) -> Item:
        return Item(self.bare_item(), self.params())

    def params(self) -> Params:
        params: list[tuple[str, BareItem]] = []
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            if any(existing == key for existing, _ in params):
                self.fail(f"parameter {key!r} appears twice")
            params.append((key, value))
        return tuple(params)

    def key(self) -> str:
        start = self.pos
        if not self.at(_KEY_FIRST):
            self.fail("expected a key (lower-case letters, digits, '_-.*')")
        self.skip("".join(_KEY_CHARS))
        return self.text[start : self.pos]

    def bare_item(self) -> BareItem:
        char = self.peek()
        if self.at("-" + string.digits):
            return self.number()
        if char == '"':
            return self.string()
        if char == ":":
            return self.byte_sequence()
        if char == "?":
            return self.boolean()
        if self.at(string.ascii_letters + "*"):
            start = self.pos
            self.skip("".join(_TOKEN_CHARS))
            return Token(self.text[start : self.pos])
        self.fail("expected an item")

    def number(self) -> int | Decimal:
        sign = ""
        if self.peek() == "-":
            sign = "-"
            self.pos += 1
        if not self.at(string.digits):
            self.fail("expected a digit")
        start = self.pos
        self.skip(string.digits + ".")
        number = self.text[start : self.pos]
        if "." not in number:
            if len(number) > 15:
                self.fail("integer has more than 15 digits")
            return int(sign + number)
        whole, _, fraction = number.partition(".")
        if "." in fraction or len(whole) > 12 or not 1 <= len(fraction) <= 3:
            self.fail("malformed decimal")
        return Decimal(sign + number)

    def string(self) -> str:
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                if not self.at('"\\'):
                    self.fail("only a quote or a backslash may be escaped in a string")
                chars.append(self.peek())
                self.pos += 1
            elif char == '"':
                return "".join(chars)
            elif not " " <= char <= "~":
                self.fail("control character in a string")
            else:
                chars.append(char)
        self.fail("string is not closed")

    def byte_sequence(self) -> bytes:
        self.pos += 1
        end = self.text.find(":", self.pos)
        if end < 0:
            self.fail("byte sequence is not closed")
        encoded = self.text[self.pos : end]
        if not set(encoded) <= _BASE64_CHARS:
            self.fail("byte sequence is not base64")
        self.pos = end + 1
        try:
            # RFC 8941 §3.3.5: parsers should not fail when the padding is left out.
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            self.fail("byte sequence is not base64")

    def boolean(self) -> bool:
        self.pos += 1
        if not self.at("01"):
            self.fail("expected ?0 or ?1")
        self.pos += 1
        return self.text[self.pos - 1] == "1"


def _serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > 999_999_999_999_999:
            raise ValueError(f"integer {value} is out of range for a structured field")
        return str(value)
    if isinstance(value, Decimal):
        whole, _, fraction = format(
            value.quantize(Decimal("0.001"), ROUND_HALF_EVEN), "f"
        ).partition(".")
        if len(whole.lstrip("-")) > 12:
            raise ValueError(f"decimal {value} is out of range for a structured field")
        return f"{whole}.{fraction.rstrip('0') or '0'}"
    if isinstance(value, Token):
        if (
            not value
            or value[0] not in string.ascii_letters + "*"
            or not set(value) <= _TOKEN_CHARS
        ):
            raise ValueError(f"{value!r} is not a valid token")
        return str(value)
    if isinstance(value, str):
        return serialize_string(value)
    return ":" + base64.b64encode(value).decode("ascii") + ":"


def serialize_string(value: str) -> str:
    """``value`` as a quoted String; ``ValueError`` if it has a character outside
    printable ASCII."""
    if not all(" " <= char <= "~" for char in value):
        raise ValueError(f"{value!r} has characters a structured field string cannot hold")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_params(params: Params) -> str:
    """Parameters as written after an item, such as ``;created=1;keyid="k"``."""
    return "".join(
        f";{key}" if value is True else f";{key}={_serialize_bare(value)}" for key, value in params
    )


def serialize_item(item: Item) -> str:
    """An Item with its parameters; ``ValueError`` for a value RFC 8941 cannot hold."""
    return _serialize_bare(item.value) + serialize_params(item.params)
