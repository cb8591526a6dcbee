"""Mutated JSON bodies and query strings into every route of the JSON API, with an
admin's token, a member's, and none: a refusal is a 4xx, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Route

from tests.fuzz.hostile import FUZZ_SETTINGS, dumps, mutated, query_strings, values
from tests.fuzz.tally import TALLY, described, last_frames
from tests.fuzz.world import World, offer_input

SUITE = "api"

# What a well-formed body of each route looks like; the fuzzer starts from these.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/offers"): offer_input("Fresh figs"),
    ("PATCH", "/api/v1/offers/{key}"): {
        "quantity": {"available": "5"},
        "price": {"amount": "3.20"},
        "title": {"en": "Figs"},
        "end_time": "2027-06-30T18:00:00+02:00",
        "images": [{"url": "https://alpha.test/media/x.png", "media_type": "image/png"}],
    },
    ("PATCH", "/api/v1/profile"): {"name": "Alpha", "summary": "A **co-op**"},
    ("POST", "/api/v1/members"): {
        "username": "m9",
        "name": "Nine",
        "role": "member",
        "joined_at": "2026-01-01",
    },
    ("PATCH", "/api/v1/members/{member_id}"): {"role": "member", "college": None},
    ("PUT", "/api/v1/colleges"): {
        "colleges": [
            {"name": "producers", "weight": "50%"},
            {"name": "workers", "weight": "50%"},
        ]
    },
    ("POST", "/api/v1/login"): {"username": "m0", "password": "not the password"},
    ("POST", "/api/v1/proposals"): {
        "title": "Adopt the 2027 delivery tariff",
        "text": "The **new** tariff.",
        "options": ["For", "Against", "Abstain"],
        "rule": "qualified",
        "threshold": "2/3",
        "quorum": "25%",
        "closes_at": "2027-04-01T09:00:00+00:00",
    },
    ("POST", "/api/v1/proposals/{key}/votes"): {"choices": ["For"]},
}
QUERIES: dict[str, dict[str, str]] = {
    "/api/v1/catalogue": {
        "q": "apples",
        "category": "apples",
        "claim": "organic",
        "coop": "https://beta.test/actors/coop",
        "currency": "EUR",
        "min_price": "1",
        "max_price": "10",
        "near": "45.76,4.84",
        "within_km": "50",
        "status": "any",
        "sort": "price",
        "limit": "5",
        "cursor": "WzM1MDAwLDFd",
    },
    "/api/v1/lookup": {"resource": "acct:coop@beta.test"},
}


def api_routes(world: World) -> list[tuple[str, str]]:
    found = []
    for route in world.target.app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((method, route.path))
    return sorted(found)


def fill(path: str, method: str, world: World, draw: Any) -> str:
    """The route's path with each parameter a real key or a hostile one. A DELETE gets
    hostile keys only, and the member the suite acts as (m0) is never named: the run
    keeps its token and the objects it attacks."""
    real = {
        "{key}": [world.keys["offer"], world.keys["proposal"], world.keys["shared"]],
        "{member_id}": [world.keys["r0"]],
    }
    for name, choices in real.items():
        if name in path:
            pool = HOSTILE_KEYS if method == "DELETE" else choices + HOSTILE_KEYS
            path = path.replace(name, draw(st.sampled_from(pool)))
    return path


HOSTILE_KEYS = [
    "0",
    "-1",
    "²",
    "99999999999999999999999999",
    "1e5",
    "%00",
    "%ED%A0%80",
    "x" * 3000,
    "..%2F..%2Fetc",
    "%25",
]


@FUZZ_SETTINGS
@given(data=st.data())
async def test_mutated_bodies_and_queries_never_get_a_5xx_from_the_api(
    world: World, data: Any
) -> None:
    method, route = data.draw(st.sampled_from(api_routes(world)), label="route")
    path = fill(route, method, world, data.draw)
    who = data.draw(
        st.sampled_from(["admin", "admin", "admin", "member", "member", "nobody", "garbage"]),
        label="token",
    )
    headers = {
        "admin": world.target.auth,
        "member": world.alpha.local["m0"],
        "nobody": {},
        "garbage": {"Authorization": "Bearer \x7f" + "x" * 300},
    }[who]
    query = ""
    content = b""
    if method == "GET" or method == "DELETE":
        query = data.draw(query_strings(QUERIES.get(route, {"lang": "fr"})), label="query")
    else:
        base = BODIES.get((method, route), {})
        body = data.draw(st.one_of(mutated(base), values), label="body")
        content = dumps(body)
        headers = {**headers, "Content-Type": "application/json"}
    url = world.target.base + path + (f"?{query}" if query else "")
    sample = f"{method} {url[:300]} as {who}: {content[:1500]!r}"
    TALLY.case(world.suite(SUITE))

    try:
        response = await world.network.http.request(
            method, httpx.URL(url), content=content or None, headers=headers
        )
    except Exception as exc:
        TALLY.failure(world.suite(SUITE), "5xx", last_frames(exc), described(exc, sample))
        return

    TALLY.answered(world.suite(SUITE), response.status_code)
    if response.status_code >= 500:
        TALLY.failure(world.suite(SUITE), "5xx", f"{method} {route} {response.text[:200]}", sample)
