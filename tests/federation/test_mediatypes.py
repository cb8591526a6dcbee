import pytest

from federation.mediatypes import (
    AS2,
    JRD,
    LD_JSON_AS2,
    is_activity_content_type,
    parse_accept,
    prefers_activity_json,
)

# Accept headers as real clients send them.
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CHROMIUM = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
MASTODON = "application/activity+json, application/ld+json"
CURL = "*/*"


def test_constants_are_the_spec_spellings() -> None:
    assert AS2 == "application/activity+json"
    assert LD_JSON_AS2 == 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    assert JRD == "application/jrd+json"


# --- parse_accept ------------------------------------------------------------------


def test_parse_accept_reads_types_parameters_and_weights_in_order() -> None:
    assert parse_accept(FIREFOX) == [
        ("text/html", {}, 1.0),
        ("application/xhtml+xml", {}, 1.0),
        ("application/xml", {}, 0.9),
        ("*/*", {}, 0.8),
    ]


def test_parse_accept_unquotes_parameters_and_lowercases_names() -> None:
    header = 'Application/LD+JSON; Profile="https://www.w3.org/ns/activitystreams"; Q=0.5'
    assert parse_accept(header) == [
        ("application/ld+json", {"profile": "https://www.w3.org/ns/activitystreams"}, 0.5)
    ]


def test_parse_accept_keeps_commas_and_semicolons_inside_quotes() -> None:
    header = r'application/ld+json; profile="a,b; c \"d\"", text/html;q=0.1'
    assert parse_accept(header) == [
        ("application/ld+json", {"profile": 'a,b; c "d"'}, 1.0),
        ("text/html", {}, 0.1),
    ]


def test_parse_accept_drops_accept_extensions_after_q() -> None:
    assert parse_accept("text/html;level=1;q=0.4;ext=1") == [("text/html", {"level": "1"}, 0.4)]


def test_parse_accept_reads_a_bare_star_as_any_type() -> None:
    # Java's HttpURLConnection sends "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2".
    assert parse_accept("*; q=.2") == [("*/*", {}, 0.2)]


@pytest.mark.parametrize(
    "junk",
    [
        "",
        ",,,",
        "html",
        "text/",
        "/html",
        "text/html/x",
        "te xt/html",
        "text/html;q=high",
        "text/html;q=2",
        "text/html;q=-1",
        "text/html;q=nan",
        "tëxt/html",
    ],
)
def test_parse_accept_skips_junk(junk: str) -> None:
    assert parse_accept(junk + ", application/activity+json") == [(AS2, {}, 1.0)]


def test_parse_accept_ignores_broken_parameters_but_keeps_the_type() -> None:
    assert parse_accept("text/html; ; =x; novalue; a=b") == [("text/html", {"a": "b"}, 1.0)]


def test_parse_accept_of_nothing_is_empty() -> None:
    assert parse_accept(None) == []
    assert parse_accept("   ") == []


def test_parse_accept_refuses_absurdly_long_headers() -> None:
    assert parse_accept("text/html," * 10_000) == []


# --- prefers_activity_json ------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        AS2,
        LD_JSON_AS2,
        "application/ld+json",
        MASTODON,
        "application/activity+json; charset=utf-8",
        "application/ld+json; profile=https://www.w3.org/ns/activitystreams",
        'application/ld+json; profile="http://www.w3.org/ns/activitystreams"',
        # Pleroma/Akkoma.
        'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        # An explicit tie goes to JSON.
        "application/activity+json, text/html",
        "text/html, application/activity+json",
        "text/html;q=0.5, application/activity+json;q=0.5",
        "text/html;q=0.5, application/activity+json;q=0.9",
        "application/*",
        "image/png, application/activity+json;q=0.5, text/html;q=0.4",
        f"{AS2}, */*;q=0.1",
        # A more specific range overrides the wildcard's q=0.
        f"*/*;q=0, {AS2}",
        # q=0 for one spelling still leaves the other.
        f"{AS2};q=0, application/ld+json",
        "application/ld+json;q=0, " + LD_JSON_AS2,
        "APPLICATION/ACTIVITY+JSON",
    ],
)
def test_clients_asking_for_activitystreams_get_json(accept: str) -> None:
    assert prefers_activity_json(accept) is True


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        FIREFOX,
        CHROMIUM,
        CURL,
        "text/html",
        "application/json",
        "text/*",
        "text/html, application/activity+json;q=0.9",
        f"{AS2};q=0",
        f"{AS2};q=0, */*",
        f"{AS2};q=0, application/ld+json;q=0, */*",
        # Neither is acceptable: not ours to choose JSON.
        "image/png",
        "garbage",
    ],
)
def test_browsers_and_everyone_else_get_html(accept: str | None) -> None:
    assert prefers_activity_json(accept) is False


# --- is_activity_content_type ---------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        AS2,
        LD_JSON_AS2,
        "application/activity+json; charset=utf-8",
        "Application/Activity+JSON",
        'application/ld+json;profile="https://www.w3.org/ns/activitystreams";charset=utf-8',
        "application/ld+json; profile=https://www.w3.org/ns/activitystreams",
        'application/ld+json; profile="https://example.org/p https://www.w3.org/ns/activitystreams"',
    ],
)
def test_activitystreams_bodies_are_recognised(content_type: str) -> None:
    assert is_activity_content_type(content_type) is True


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/ld+json",
        'application/ld+json; profile="https://example.org/other"',
        "text/html",
        "application/x-www-form-urlencoded",
        f"{AS2}, text/html",
        "application/activity+json+extra",
        "junk",
    ],
)
def test_other_bodies_are_not_activitystreams(content_type: str | None) -> None:
    assert is_activity_content_type(content_type) is False
