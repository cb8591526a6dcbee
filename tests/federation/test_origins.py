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


def test_an_international_name_is_one_host_whichever_way_it_is_written() -> None:
    from federation.inbox import host_of

    assert host_of("https://bücher.example/a") == "xn--bcher-kva.example"
    assert host_of("https://xn--bcher-kva.example/a") == "xn--bcher-kva.example"
    assert same_origin("https://BÜCHER.example/a", "https://xn--bcher-kva.example:443/b")


async def test_a_redirect_to_a_blocked_international_name_is_refused() -> None:
    """httpx gives a URL's host in Unicode; a block list holds the punycode form (as the
    admin's command writes it, and as Mastodon's exported lists have it)."""
    import json

    import httpx
    from starlette.types import Receive, Scope, Send

    from federation.errors import Refused
    from federation.fetch import fetch_json
    from node.services.domains import DomainPolicy, normalise

    async def good(scope: Scope, receive: Receive, send: Send) -> None:
        location = b"https://xn--bcher-kva.example/users/a"
        await send(
            {"type": "http.response.start", "status": 302, "headers": [(b"location", location)]}
        )
        await send({"type": "http.response.body", "body": b""})

    async def blocked(scope: Scope, receive: Receive, send: Send) -> None:
        served.append(str(scope["path"]))
        body = json.dumps({"id": "https://xn--bcher-kva.example/users/a", "type": "Person"})
        headers = [(b"content-type", b"application/activity+json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})

    served: list[str] = []
    mounts = {
        "all://good.example": httpx.ASGITransport(app=good),
        "all://xn--bcher-kva.example": httpx.ASGITransport(app=blocked),
    }
    # The admin typed the name in Unicode; it is kept as punycode.
    policy = DomainPolicy(blocked=frozenset({normalise("Bücher.example")}))
    async with httpx.AsyncClient(mounts=mounts) as http:
        with pytest.raises(Refused):
            await fetch_json(http, "https://good.example/users/a", refusal=policy.refusal)
    assert served == []
