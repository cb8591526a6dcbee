"""The demo's network "Plateformes en communs": described in the data file, formed on
the running demo's nodes through the real flow (each co-op applies from its own node,
the host's admin admits the three co-ops), with the newcomer's application left waiting
and every member's catalogue holding the other members' offers, followed or not."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from node.catalogue import store as catalogue
from node.demo.coops import DATA_FILE, load_seed, parse_seed
from node.demo.errors import DemoError
from node.follows import store as follows
from node.networks import store as networks
from node.networks.model import Membership, RosterEntry, State
from node.services import identity
from node.settings import DATABASE_FILE
from node.storage.database import Database
from tests.support.demo import free_ports, login, start_demo

T = TypeVar("T")

NAME = "plateformes-en-communs"
_NETWORK = re.compile(r"^\s*network\s+(\S+)\s+(http://\S+)\s+@(\S+)\s+(.+?)\s*$")
_SEAT = re.compile(r"^\s*member\s+(\S+)\s+(member|pending)\s+(.+?) / (.+?)\s*$")
_NEWCOMER = re.compile(r"^\s*newcomer\s+(\S+)\s+(http://\S+/)\s+@(\S+)\s+(.+?)\s*$")


def packaged_text() -> str:
    return resources.files("node.demo").joinpath(DATA_FILE).read_text(encoding="utf-8")


def read_db(data_dir: Path, read: Callable[[Any], T]) -> T:
    """``read(conn)`` on one demo node's database, as it is now."""
    db = Database(f"sqlite:///{data_dir / DATABASE_FILE}", readers=1)
    try:
        return db.read_sync(read)
    finally:
        db.close()


def test_the_data_file_describes_the_network_its_members_and_the_one_waiting() -> None:
    seed = load_seed()

    network = seed.network
    assert network is not None
    assert (network.name, network.title, network.host, network.admission) == (
        NAME,
        "Plateformes en communs",
        "marche",
        "admin",
    )
    assert "coopérative" in network.charter
    assert [(s.coop, s.sector, s.region) for s in network.members] == [
        ("marche", "Commerce équitable", "Métropole de Lyon"),
        ("food", "Alimentation", "Vallée de la Drôme"),
        ("tourism", "Tourisme", "Vercors"),
    ]
    assert [s.coop for s in network.waiting] == ["gites"]
    # The fourth co-op is a node of its own, apart from the three.
    [gites] = seed.newcomers
    assert (gites.handle, gites.name) == ("gites", "Gîtes en commun")
    assert len(gites.offers) == 4
    assert [c.handle for c in seed.everyone] == ["marche", "food", "tourism", "gites"]
    assert seed.coop("gites") is gites
    # The tourism co-op does not follow the food network: the network brings its offers.
    assert {c.handle: seed.followed_by(c) for c in seed.everyone} == {
        "marche": ("food", "tourism"),
        "food": ("marche", "tourism"),
        "tourism": ("marche",),
        "gites": (),
    }


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('host = "marche"', 'host = "gites"', "host should be one of the three co-ops"),
        ('{ coop = "food"', '{ coop = "nowhere"', "network: no co-op 'nowhere'"),
        ('{ coop = "gites"', '{ coop = "food"', "a co-op applies once"),
        ('admission = "admin"', 'admission = "vote"', "admission should be 'admin'"),
        ('name = "plateformes-en-communs"', 'name = "Plateformes!"', "a network's name"),
        ('follows = ["marche"]', 'follows = ["tourism"]', "does not follow itself"),
        ('follows = ["marche"]', 'follows = ["gites"]', "follows: no co-op 'gites'"),
        ('handle = "gites"', 'handle = "food"', "handles should be distinct"),
        ('charter = """', 'charte = """', "network: charter is missing"),
        (
            'handle = "marche"',
            'handle = "marche"\nfollows = ["food"]',
            "marche does not follow its host tourism",
        ),
    ],
)
def test_a_broken_network_is_refused_naming_what_is_wrong(old: str, new: str, message: str) -> None:
    text = packaged_text()
    assert old in text

    with pytest.raises(DemoError) as refused:
        parse_seed(text.replace(old, new, 1))

    assert message in str(refused.value)


def test_a_file_without_a_network_or_newcomers_forms_none() -> None:
    text = packaged_text()
    start, end = text.index("# A fourth co-op"), text.index("# The food network's own")

    seed = parse_seed(text[:start] + text[end:])

    assert (seed.network, seed.newcomers) == (None, ())


@pytest.mark.e2e
def test_the_demo_forms_the_network_with_one_application_waiting() -> None:
    seed = load_seed()
    demo = start_demo(free_ports(4))
    try:
        info = demo.wait_ready()
        output = demo.read_output()
        lines = output.splitlines()
        [(host, actor, address, title)] = [m.groups() for x in lines if (m := _NETWORK.match(x))]
        marche, food, tourism = (info.nodes[h] for h in ("marche", "food", "tourism"))
        assert seed.network is not None
        assert (host, actor, title) == ("marche", f"{marche.base}actors/{NAME}", seed.network.title)
        assert address == f"{NAME}@{marche.base.removeprefix('http://').rstrip('/')}"
        seats = [m.groups() for x in lines if (m := _SEAT.match(x))]
        assert seats == [
            ("marche", "member", "Commerce équitable", "Métropole de Lyon"),
            ("food", "member", "Alimentation", "Vallée de la Drôme"),
            ("tourism", "member", "Tourisme", "Vercors"),
            ("gites", "pending", "Tourisme", "Ardèche"),
        ]
        [(_, gites_base, _, gites_name)] = [m.groups() for x in lines if (m := _NEWCOMER.match(x))]
        assert gites_base == f"http://127.0.0.1:{demo.port + 3}/"
        assert gites_name == "Gîtes en commun"
        assert "gites" not in info.nodes
        gites_actor = f"{gites_base}actors/gites"
        assert info.data_dir is not None
        data = info.data_dir

        # At its host: three members, the newcomer's application waiting for the admin.
        def hosted(conn: Any) -> tuple[int, list[Any], list[Any]]:
            network = networks.find_network(conn, NAME)
            assert network is not None
            return (
                networks.count_members(conn, network.id),
                networks.members(conn, network.id, limit=10),
                networks.members(conn, network.id, states=(State.PENDING,), limit=10),
            )

        count, members, waiting = read_db(data / "marche", hosted)
        assert count == 3
        assert {(m.actor, m.sector, m.region) for m in members} == {
            (marche.actor, "Commerce équitable", "Métropole de Lyon"),
            (food.actor, "Alimentation", "Vallée de la Drôme"),
            (tourism.actor, "Tourisme", "Vercors"),
        }
        assert [(m.actor, m.state, m.sector, m.region) for m in waiting] == [
            (gites_actor, State.PENDING, "Tourisme", "Ardèche")
        ]

        # Each member knows it belongs, with the two others on its roster.
        trio = (marche, food, tourism)
        for node in trio:

            def belonging(conn: Any) -> tuple[Membership, list[RosterEntry]]:
                found = networks.membership(conn, actor)
                assert found is not None
                return found, networks.roster(conn, found.id)

            membership, roster = read_db(data / node.handle, belonging)
            assert membership.state is State.MEMBER, node.handle
            assert membership.name == "Plateformes en communs"
            assert {e.actor for e in roster} == {o.actor for o in trio if o is not node}
            assert {e.sector for e in roster} <= {"Commerce équitable", "Alimentation", "Tourisme"}

        # The newcomer's application waits.
        pending = read_db(data / "gites", lambda conn: networks.membership(conn, actor))
        assert pending is not None
        assert pending.state is State.PENDING
        assert (pending.sector, pending.region) == ("Tourisme", "Ardèche")

        # The tourism co-op does not follow the food network, yet its catalogue holds all
        # of the food network's offers: the network lists it and brought them.
        def unfollowed(conn: Any) -> tuple[str | None, int, bool]:
            coop_id = identity.find_actor_id(conn, "tourism")
            assert coop_id is not None
            return (
                follows.following_state(conn, actor_id=coop_id, followed=food.actor),
                catalogue.count(conn, actor=food.actor),
                networks.relays(conn, food.actor, network=actor),
            )

        assert read_db(data / "tourism", unfollowed) == (None, len(seed.coop("food").offers), True)
        # Nothing of the newcomer reached the members: its application waits.
        for node in trio:
            assert read_db(data / node.handle, lambda c: catalogue.count(c, actor=gites_actor)) == 0

        # Seen over HTTP: the food network's apples in the tourism co-op's catalogue.
        with httpx.Client(timeout=10) as http:
            admin = login(http, tourism, info.login("tourism"))
            hits = http.get(
                tourism.base + "api/v1/catalogue", params={"q": "pommes"}, headers=admin
            ).json()["items"]
            assert food.actor in {hit["coop"] for hit in hits}
    finally:
        code = demo.stop()
    output = demo.read_output()
    assert code == 0, output
    assert "Traceback" not in output
