from urllib.parse import parse_qs, urlsplit

import pytest

from federation.webfinger import (
    WebFingerError,
    actor_id_from_jrd,
    build_jrd,
    parse_acct,
    webfinger_url,
)

# The shape Mastodon answers with (https://docs.joinmastodon.org/spec/webfinger/).
MASTODON_LINKS: list[dict[str, str]] = [
    {
        "rel": "http://webfinger.net/rel/profile-page",
        "type": "text/html",
        "href": "https://mastodon.example/@Gargron",
    },
    {
        "rel": "self",
        "type": "application/activity+json",
        "href": "https://mastodon.example/users/Gargron",
    },
    {
        "rel": "http://ostatus.org/schema/1.0/subscribe",
        "template": "https://mastodon.example/authorize_interaction?uri={uri}",
    },
]
MASTODON_JRD = {
    "subject": "acct:Gargron@mastodon.example",
    "aliases": ["https://mastodon.example/@Gargron", "https://mastodon.example/users/Gargron"],
    "links": MASTODON_LINKS,
}


def test_webfinger_error_is_a_value_error() -> None:
    assert issubclass(WebFingerError, ValueError)


# --- parse_acct ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("acct:alice@coop.example", ("alice", "coop.example")),
        ("acct:alice@Coop.Example", ("alice", "coop.example")),
        ("ACCT:alice@coop.example", ("alice", "coop.example")),
        ("acct:alice@coop.example:8443", ("alice", "coop.example:8443")),
        ("acct:alice@localhost:8001", ("alice", "localhost:8001")),
        ("acct:alice@127.0.0.1:8001", ("alice", "127.0.0.1:8001")),
        ("acct:Alice_B@coop.example", ("Alice_B", "coop.example")),
        ("acct:first.last-1@xn--bcher-kva.example", ("first.last-1", "xn--bcher-kva.example")),
    ],
)
def test_acct_uris_are_split_into_user_and_host(resource: str, expected: tuple[str, str]) -> None:
    assert parse_acct(resource) == expected
    assert parse_acct(resource, strict=False) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "alice@coop.example",
        "@alice@coop.example",
        "  @alice@Coop.Example\n",
        "acct:alice@coop.example ",
    ],
)
def test_a_person_may_type_an_account_without_acct(typed: str) -> None:
    assert parse_acct(typed, strict=False) == ("alice", "coop.example")


@pytest.mark.parametrize(
    "resource", ["alice@coop.example", "@alice@coop.example", " acct:alice@coop.example"]
)
def test_the_endpoint_takes_only_acct_uris(resource: str) -> None:
    with pytest.raises(WebFingerError):
        parse_acct(resource)


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        ("", "empty"),
        ("acct:", "user@host"),
        ("acct:alice", "user@host"),
        ("acct:@coop.example", "empty user"),
        ("acct:alice@", "empty host"),
        ("acct:alice@@coop.example", "user@host"),
        ("acct:alice@bob@coop.example", "user@host"),
        ("acct:@alice@coop.example", "user@host"),
        ("acct:al ice@coop.example", "not allowed"),
        ("acct:alice@coop .example", "not a valid host"),
        ("acct:alïce@coop.example", "not allowed"),
        ("acct:alice@coöp.example", "ASCII"),
        ("acct:alice@\u212aoop.example", "ASCII"),  # KELVIN SIGN lower-cases to "k"
        ("acct:alice%40x@coop.example", "not allowed"),
        ("acct:alice/x@coop.example", "not allowed"),
        ("acct:alice@coop.example/path", "not a valid host"),
        ("acct:alice@coop.example?x=1", "not a valid host"),
        ("acct:alice@coop..example", "not a valid host"),
        ("acct:alice@coop.example.", "not a valid host"),
        ("acct:alice@-coop.example", "not a valid host"),
        ("acct:alice@coop_a.example", "not a valid host"),
        ("acct:alice@[::1]", "not a valid host"),
        ("acct:alice@coop.example:", "invalid port"),
        ("acct:alice@coop.example:0", "invalid port"),
        ("acct:alice@coop.example:65536", "invalid port"),
        ("acct:alice@coop.example:http", "invalid port"),
        ("acct:alice@coop.example:80:81", "invalid port"),
        ("acct:alice@" + "a" * 64 + ".example", "not a valid host"),
        ("acct:" + "a" * 240 + "@coop.example", "longer than 255"),
    ],
)
def test_malformed_accounts_are_refused_with_a_reason(resource: str, reason: str) -> None:
    for strict in (True, False):
        with pytest.raises(WebFingerError, match=reason):
            parse_acct(resource, strict=strict)


def test_long_but_valid_host_names_are_accepted() -> None:
    host = ".".join(["a" * 63] * 3)
    assert parse_acct(f"acct:bob@{host}") == ("bob", host)


def test_non_strings_are_refused() -> None:
    with pytest.raises(WebFingerError, match="must be a string"):
        parse_acct(None)  # type: ignore[arg-type]


def test_error_messages_do_not_echo_huge_input() -> None:
    with pytest.raises(WebFingerError) as caught:
        parse_acct("x" * 10_000, strict=False)
    assert len(str(caught.value)) < 200


# --- build_jrd -------------------------------------------------------------------


def test_build_jrd_has_the_links_mastodon_follows() -> None:
    aliases = ["https://coop.example/@alice", "https://coop.example/actors/alice"]

    jrd = build_jrd(
        "acct:alice@coop.example",
        aliases,
        actor_id="https://coop.example/actors/alice",
        profile_url="https://coop.example/@alice",
    )

    assert jrd == {
        "subject": "acct:alice@coop.example",
        "aliases": aliases,
        "links": [
            {
                "rel": "self",
                "type": "application/activity+json",
                "href": "https://coop.example/actors/alice",
            },
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": "https://coop.example/@alice",
            },
        ],
    }
    assert jrd["aliases"] is not aliases
    assert actor_id_from_jrd(jrd) == "https://coop.example/actors/alice"


def test_build_jrd_refuses_one_string_as_aliases() -> None:
    with pytest.raises(TypeError, match="aliases"):
        build_jrd(
            "acct:a@b.example", "https://b.example/a", "https://b.example/a", "https://b.example/@a"
        )


# --- webfinger_url ---------------------------------------------------------------


def test_webfinger_url_encodes_the_resource() -> None:
    url = webfinger_url("alice", "coop.example")

    assert url == "https://coop.example/.well-known/webfinger?resource=acct%3Aalice%40coop.example"
    assert parse_qs(urlsplit(url).query) == {"resource": ["acct:alice@coop.example"]}


def test_webfinger_url_keeps_the_port_and_allows_http_for_local_nodes() -> None:
    url = webfinger_url("alice", "Localhost:8001", scheme="http")

    assert url.startswith("http://localhost:8001/.well-known/webfinger?")
    assert parse_qs(urlsplit(url).query) == {"resource": ["acct:alice@localhost:8001"]}


def test_webfinger_url_escapes_sub_delims_in_the_user() -> None:
    url = webfinger_url("a+b&c=d", "coop.example")
    assert parse_qs(urlsplit(url).query) == {"resource": ["acct:a+b&c=d@coop.example"]}


@pytest.mark.parametrize(
    ("user", "host", "scheme"),
    [
        ("alice", "evil.example/steal?x=", "https"),
        ("alice", "evil.example#", "https"),
        ("alice", "user@evil.example", "https"),
        ("al/ice", "coop.example", "https"),
        ("", "coop.example", "https"),
        ("alice", "coop.example", "ftp"),
        ("alice", "coop.example", "javascript"),
    ],
)
def test_webfinger_url_refuses_what_would_change_the_target(
    user: str, host: str, scheme: str
) -> None:
    with pytest.raises(WebFingerError):
        webfinger_url(user, host, scheme=scheme)


# --- actor_id_from_jrd -----------------------------------------------------------


def test_actor_id_is_read_from_a_mastodon_jrd() -> None:
    assert actor_id_from_jrd(MASTODON_JRD) == "https://mastodon.example/users/Gargron"


def test_a_self_link_typed_as_ld_json_with_the_profile_counts() -> None:
    jrd = {
        "links": [
            {
                "rel": "self",
                "type": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
                "href": "https://pleroma.example/users/bob",
            }
        ]
    }
    assert actor_id_from_jrd(jrd) == "https://pleroma.example/users/bob"


def test_unusable_self_links_are_passed_over() -> None:
    jrd = {
        "links": [
            "not an object",
            {"rel": "self", "type": "text/html", "href": "https://x.example/@bob"},
            {"rel": "self", "href": "https://x.example/no-type"},
            {"rel": "self", "type": "application/activity+json"},
            {"rel": "self", "type": "application/activity+json", "href": 42},
            {"rel": "self", "type": "application/activity+json", "href": "/users/bob"},
            {"rel": "self", "type": "application/activity+json", "href": "ftp://x.example/b"},
            {"rel": "self", "type": "application/activity+json", "href": "https://x.example/bob"},
        ]
    }
    assert actor_id_from_jrd(jrd) == "https://x.example/bob"


@pytest.mark.parametrize(
    ("jrd", "reason"),
    [
        (None, "not a JSON object"),
        ([], "not a JSON object"),
        ("{}", "not a JSON object"),
        ({}, "no list of links"),
        ({"links": {"rel": "self"}}, "no list of links"),
        ({"links": []}, "no self link"),
        (
            {"links": [{"rel": "self", "type": "text/html", "href": "https://x.example/"}]},
            "no self link",
        ),
        ({"links": [link for link in MASTODON_LINKS if link["rel"] != "self"]}, "no self link"),
    ],
)
def test_a_jrd_without_an_actor_is_an_error(jrd: object, reason: str) -> None:
    with pytest.raises(WebFingerError, match=reason):
        actor_id_from_jrd(jrd)
