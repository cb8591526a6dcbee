"""Finding the guard of a guarded httpx client, for the aiohttp clients built beside it."""

from __future__ import annotations

import httpx

from federation.netguard import client_guard, make_guarded_transport


async def test_a_guarded_client_gives_its_guard_tls_context_and_user_agent() -> None:
    transport = make_guarded_transport(allow_loopback=True)
    async with httpx.AsyncClient(
        transport=transport,
        headers={"User-Agent": "coop/1"},
        timeout=httpx.Timeout(10.0, connect=3.0),
    ) as client:
        found = client_guard(client)

    assert found is not None
    assert found.guard is transport.guard
    assert found.guard.allow_loopback
    assert found.ssl_context is transport.ssl_context
    assert (found.user_agent, found.connect_timeout) == ("coop/1", 3.0)


async def test_any_other_client_has_no_guard() -> None:
    async with httpx.AsyncClient() as client:
        assert client_guard(client) is None
    mounted = {"https://peer.test": httpx.AsyncHTTPTransport()}
    async with httpx.AsyncClient(transport=make_guarded_transport(), mounts=mounted) as client:
        assert client_guard(client) is None
