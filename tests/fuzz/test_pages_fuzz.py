"""Mutated query strings and path keys into the catalogue page and every other page
and document a browser or a peer may GET: never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Route

from tests.fuzz.hostile import FUZZ_SETTINGS, query_strings
from tests.fuzz.tally import TALLY, described, last_frames
from tests.fuzz.test_api_fuzz import HOSTILE_KEYS, QUERIES
from tests.fuzz.world import World

SUITE = "pages"
CATALOGUE = {**QUERIES["/api/v1/catalogue"], "lang": "fr"}
PAGE_QUERIES: dict[str, dict[str, str]] = {
    "/catalogue": CATALOGUE,
    "/.well-known/webfinger": {"resource": "acct:coop@alpha.test"},
    "/actors/{username}/offers": {"page": "true", "before": "5"},
    "/actors/{username}/followers": {"page": "1"},
    "/actors/{username}/following": {"page": "1"},
    "/actors/{username}/members": {"page": "1"},
    "/actors/{username}/outbox": {"page": "true"},
    "/actors/{username}/proposals": {"page": "1"},
    "/proposals/{key}/ballots": {"page": "1"},
    "/proposals/{key}/voters": {"page": "1"},
    "/proposals": {"lang": "en", "state": "open"},
}
ACCEPTS = [
    "text/html",
    "application/activity+json",
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    "*/*",
    "text/html;q=0.5, application/activity+json;q=\x7f",
]


def page_routes(world: World) -> list[str]:
    return sorted(
        {
            route.path
            for route in world.target.app.routes
            if isinstance(route, Route)
            and not route.path.startswith("/api/")
            and "GET" in (route.methods or ())
        }
    )


def fill(path: str, world: World, draw: Any) -> str:
    real = {
        "{username}": ["coop", "m0"],
        "{key}": [world.keys["offer"], world.keys["proposal"], world.keys["shared"]],
        "{offer_id:int}": ["1", "2", "0", "99999999999999999999999999"],
        "{slug}": ["apples", "fruit"],
        "{name}": ["x.png", "activitystreams.jsonld"],
        "{member_id}": ["1", "2"],
    }
    for name, choices in real.items():
        if name in path:
            hostile = [] if name == "{offer_id:int}" else HOSTILE_KEYS
            path = path.replace(name, draw(st.sampled_from(choices + hostile)))
    return path


@FUZZ_SETTINGS
@given(data=st.data())
async def test_mutated_queries_never_get_a_5xx_from_a_page(world: World, data: Any) -> None:
    route = data.draw(st.sampled_from(page_routes(world)), label="route")
    path = fill(route, world, data.draw)
    query = data.draw(query_strings(PAGE_QUERIES.get(route, {"lang": "fr"})), label="query")
    accept = data.draw(st.sampled_from(ACCEPTS), label="accept")
    url = world.target.base + path + (f"?{query}" if query else "")
    sample = f"GET {url[:1500]} Accept: {accept!r}"
    TALLY.case(world.suite(SUITE))

    try:
        response = await world.network.http.get(httpx.URL(url), headers={"Accept": accept})
    except Exception as exc:  # the app raised: a 500 behind a real server
        TALLY.failure(world.suite(SUITE), "5xx", last_frames(exc), described(exc, sample))
        return

    TALLY.answered(world.suite(SUITE), response.status_code)
    if response.status_code >= 500:
        TALLY.failure(world.suite(SUITE), "5xx", f"GET {route} {response.text[:200]}", sample)
