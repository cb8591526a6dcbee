"""``"²".isdigit()`` is true but ``int("²")`` raises: a peer's or a form's "number" read
with ``isdigit()`` alone turns into a 500 or a crashed round. Every ``isdigit()`` in the
code is guarded by ``isascii()`` on the same line."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_isdigit_is_guarded_by_isascii() -> None:
    unguarded = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in ("node", "federation")
        for path in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ".isdigit()" in line and ".isascii()" not in line
    ]
    assert unguarded == []


@pytest.mark.parametrize("text", ["²", "³", "¹²"])
def test_digits_that_int_refuses_are_what_the_guard_is_for(text: str) -> None:
    assert text.isdigit()
    assert not text.isascii()
    with pytest.raises(ValueError, match="invalid literal"):
        int(text)
