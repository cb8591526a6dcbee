"""The inbox compares hosts with a quick reader; it must agree with the standard library."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from federation.inbox import host_of


@pytest.mark.parametrize(
    "url",
    [
        "https://peer.example/users/alice",
        "https://Peer.EXAMPLE/users/alice",
        "http://peer.example:8080/x",
        "https://peer.example",
        "https://peer.example?x=1",
        "https://peer.example#frag",
        "https://peer.example:/x",
        "https://alice@peer.example/x",
        "https://evil.example@peer.example/x",
        "https://[::1]:8443/x",
        "https://peer.example\\@evil.example/",
        "https://pe\ter.example/",
        "https://peer.example%2F@evil.example/",
        "ftp://peer.example/",
        "https:///nohost",
        "not a url",
    ],
)
def test_host_of_agrees_with_urlsplit(url: str) -> None:
    assert host_of(url) == (urlsplit(url).hostname or "").lower()
