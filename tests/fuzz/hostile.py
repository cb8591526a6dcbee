"""What a hostile peer or client sends: real documents with values swapped for wrong
types, lone surrogates, NUL, huge and negative numbers, very long strings and deep
nesting; query strings likewise.

A document is mutated at one to three places drawn from every place it has (any key,
at any depth, or the whole), so each field of a real activity meets each kind of
hostile value. Deep nesting is written into the JSON text directly: Python's own
encoder would refuse it, and a peer's bytes need not come from any encoder.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The default run keeps the whole fuzzing suite well under a minute; set
# COOPNODE_FUZZ_EXAMPLES (say 5000) for a longer one.
EXAMPLES = int(os.environ.get("COOPNODE_FUZZ_EXAMPLES", "150"))

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "x\udc00y",
    "\u202e\u0000",
    "💥",
    "null",
    "true",
    "0",
    "-1",
    "²",
    "٣",
    "99999999999999999999999999",
    "1e400",
    "NaN",
    "[]",
    "{}",
    "%00",
    "%ff%fe",
    "../../../etc/passwd",
    "<script>alert(1)</script>",
    "https://",
    "https://evil.test/x",
    "https://beta.test/actors/coop",
    "https://alpha.test/actors/coop",
    "http://127.0.0.1/",
    "//beta.test/x",
    "acct:coop@beta.test",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2027-02-30T00:00:00Z",
    "2027-03-01T09:00:00",
    "Create",
    "Proposal",
    "Question",
    "Note",
    "Person",
    "Group",
    "Tombstone",
    "as:Public",
    "https://www.w3.org/ns/activitystreams#Public",
]
NUMBERS = [0, -1, 1, 2**31, -(2**31), 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**100, -(10**100)]
LENGTHS = [300, 5_000, 70_000]
DEPTHS = [20, 65, 200, 1_500]


@dataclass(frozen=True)
class Deep:
    """Arrays or objects nested ``depth`` levels, written straight into the text."""

    depth: int
    brackets: str  # "[]" or "{}"

    def text(self) -> str:
        if self.brackets == "[]":
            return "[" * self.depth + "]" * self.depth
        return '{"a":' * self.depth + "null" + "}" * self.depth


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.integers(),
    st.floats(),  # with NaN and the infinities, which Python's JSON reader accepts
    st.sampled_from(STRINGS),
    st.text(max_size=12),
    st.sampled_from(LENGTHS).map(lambda n: "x" * n),
)
deep = st.builds(Deep, st.sampled_from(DEPTHS), st.sampled_from(["[]", "{}"]))
keys = st.one_of(
    st.sampled_from(["id", "type", "actor", "object", "", "\x00", "\ud800"]), st.text(max_size=8)
)
nested = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=8,
)
# Deep values one time in ten: the inbox refuses them whole, before any handler. (The
# odd numbers below are on purpose: Hypothesis draws 0 and other edges far more often.)
values = st.integers(0, 9).flatmap(lambda n: deep if n == 7 else nested)


def places(document: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in ``document`` a value can be swapped, removed or added."""
    yield prefix
    if isinstance(document, dict):
        for key, item in document.items():
            yield from places(item, (*prefix, key))
    elif isinstance(document, list):
        for index, item in enumerate(document):
            yield from places(item, (*prefix, index))


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


@st.composite
def mutated(draw: st.DrawFn, document: dict[str, Any]) -> Any:
    """``document`` changed at one to three places; the whole of it one time in twenty
    (a body that is not an object at all is refused before anything reads it)."""
    changed: Any = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        found = list(places(changed))[1:] or [()]
        path = () if draw(st.integers(0, 19)) == 13 else draw(st.sampled_from(found))
        action = draw(st.sampled_from(["swap", "swap", "swap", "drop", "add", "wrap"]))
        if not path:
            if action in ("swap", "drop"):
                changed = draw(values)
            elif action == "wrap":
                changed = [changed]
            elif isinstance(changed, dict):
                changed[draw(keys)] = draw(values)
            continue
        parent = _at(changed, path[:-1])
        last = path[-1]
        if action == "swap":
            parent[last] = draw(values)
        elif action == "drop":
            del parent[last]
        elif action == "wrap":
            parent[last] = [parent[last]]
        else:
            target = parent[last]
            if isinstance(target, dict):
                target[draw(keys)] = draw(values)
            elif isinstance(target, list):
                target.append(draw(values))
            else:
                parent[last] = draw(values)
    return changed


def dumps(document: Any) -> bytes:
    """The JSON text of ``document``: lone surrogates escaped as a peer would send
    them (``"\\ud800"``), NaN and the infinities as Python writes them, deep values
    written as brackets."""
    deep_values: list[Deep] = []

    def placeholder(value: Any) -> Any:
        if isinstance(value, Deep):
            deep_values.append(value)
            return f"@@deep{len(deep_values) - 1}@@"
        if isinstance(value, dict):
            return {k: placeholder(v) for k, v in value.items()}
        if isinstance(value, list):
            return [placeholder(v) for v in value]
        return value

    text = json.dumps(placeholder(document))
    for index, value in enumerate(deep_values):
        text = text.replace(f'"@@deep{index}@@"', value.text(), 1)
    return text.encode()


def query_value(value: Any) -> str:
    """A value as query text; at most 4,000 characters, about what a server's request
    line takes (and httpx refuses to build a URL of more than 65,536)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)[:100]
    return text[:4000]


@st.composite
def query_strings(draw: st.DrawFn, base: dict[str, str]) -> str:
    """A query string from ``base`` with parameters dropped, changed, repeated or
    added, percent-encoded; lone surrogates as the bytes of their UTF-8-like
    encoding (invalid UTF-8, as a client may send), and raw escapes left as they are."""
    pairs: list[tuple[str, str]] = []
    for name, value in base.items():
        choice = draw(st.sampled_from(["keep", "keep", "drop", "swap", "twice"]))
        if choice == "drop":
            continue
        if choice == "swap":
            value = query_value(draw(scalars))
        pairs.append((name, value))
        if choice == "twice":
            pairs.append((name, query_value(draw(scalars))))
    for _ in range(draw(st.integers(0, 2))):
        pairs.append((query_value(draw(keys)), query_value(draw(scalars))))
    encoded = "&".join(
        f"{quote(n, safe='', errors='surrogatepass')}={quote(v, safe='', errors='surrogatepass')}"
        for n, v in pairs
    )
    raw = draw(st.sampled_from(["", "", "", "&%", "&%ff%fe=1", "&=&&", "&a=%ED%A0%80"]))
    return encoded + raw
