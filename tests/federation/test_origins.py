"""Origins are scheme, host and port: two servers on one host are two servers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from federation.origins import origin_of, same_origin

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://coop.example/actors/coop", "https://coop.example:443"),
        ("https://Coop.Example:443/x", "https://coop.example:443"),
        ("HTTPS://coop.example", "https://coop.example:443"),
        ("http://127.0.0.1:8001/inbox", "http://127.0.0.1:8001"),
        ("http://coop.example/", "http://coop.example:80"),
        ("https://user@coop.example:8443/x", "https://coop.example:8443"),
        ("https://[::1]:8443/x", "https://[::1]:8443"),
        ("https://coop.example:99999/x", ""),
        ("https://coop.example:0/x", ""),
        ("ftp://coop.example/x", ""),
        ("https:///nohost", ""),
        ("not a url", ""),
        ("", ""),
    ],
)
def test_an_origin_is_scheme_host_and_port(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_a_different_port_or_scheme_is_another_server() -> None:
    assert same_origin("https://coop.example/a", "https://coop.example:443/b")
    assert not same_origin("https://coop.example/a", "https://coop.example:8443/a")
    assert not same_origin("http://coop.example/a", "https://coop.example/a")
    assert not same_origin("https://coop.example/a", "https://coop.example.evil/a")
    assert not same_origin("", "")
    assert not same_origin("mailto:a@b", "mailto:a@b")


def _host_comparisons(path: Path) -> list[int]:
    """Lines where the host names of two URLs are compared: ``host_of(a) == host_of(b)``
    drops the port, so it cannot tell two servers on one host apart."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        calls = [
            side
            for side in sides
            if isinstance(side, ast.Call)
            and isinstance(side.func, ast.Name | ast.Attribute)
            and (side.func.id if isinstance(side.func, ast.Name) else side.func.attr)
            in ("host_of", "hostname")
        ]
        hostnames = [
            side for side in sides if isinstance(side, ast.Attribute) and side.attr == "hostname"
        ]
        if len(calls) + len(hostnames) >= 2:
            found.append(node.lineno)
    return found


def test_no_origin_check_compares_bare_host_names() -> None:
    offenders = {}
    for package in ("node", "federation"):
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = _host_comparisons(path)
            if lines:
                offenders[str(path.relative_to(ROOT))] = lines
    assert offenders == {}, "compare origins with federation.origins.same_origin"
