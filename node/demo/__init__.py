"""``coopnode demo``: three federated co-ops on loopback, in one process.

A fair-trade marketplace, a local food network and a multi-stakeholder tourism co-op
(with colleges), each a local node with its own database, on ports PORT, PORT+1 and
PORT+2. Each is seeded with members who log in with the passwords printed, and with
offers in French and English; each follows the other two, so that every catalogue
holds the three co-ops' offers. The food network has a proposal of its own open for
voting, and the tourism co-op hosts a proposal shared with the other two.

Everything runs until SIGINT (Ctrl-C) or SIGTERM, then the servers and their workers
stop, and a temporary data directory is deleted.

The output is meant to be read by people and by scripts alike: one line per node
(``node HANDLE URL @HANDLE@DOMAIN NAME``), one per login (``login HANDLE ROLE USERNAME
PASSWORD NAME``), one per proposal (``proposal HANDLE KIND URL TITLE``), and a last line
saying that Ctrl-C stops the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from starlette.applications import Starlette

from federation.clock import Clock
from node.runtime import Node
from node.settings import DATABASE_FILE, Settings, write_config

HOST = "127.0.0.1"
MARKER = ".coopnode-demo"
# How long the co-ops may take to follow each other and exchange their offers.
SETTLE_TIMEOUT = 90.0

# --- the co-ops, as plain data ---------------------------------------------------------


@dataclass(frozen=True)
class DemoMember:
    username: str
    name: str
    role: str
    password: str
    college: str | None = None


@dataclass(frozen=True)
class DemoCoop:
    handle: str
    name: str
    summary: str
    place: tuple[str, float, float]
    members: tuple[DemoMember, ...]
    offers: tuple[dict[str, Any], ...]
    colleges: tuple[tuple[str, str], ...] = ()
    # "approve": the admin approves each new follower (the demo approves its peers).
    follow_policy: str = "auto"


def _offer(
    title: tuple[str, str],
    description: tuple[str, str],
    category: str,
    price: str,
    unit: str,
    *,
    claims: tuple[str, ...] = (),
    delivery: tuple[str, ...] = ("pickup",),
    payment: tuple[str, ...] = ("card", "bank_transfer"),
    available: str | None = None,
) -> dict[str, Any]:
    """An offer in the JSON API's shape (see node.offers.validation), in French and
    English."""
    data: dict[str, Any] = {
        "title": {"fr": title[0], "en": title[1]},
        "description": {"fr": description[0], "en": description[1]},
        "categories": [category],
        "price": {"amount": price, "currency": "EUR"},
        "unit": unit,
        "claims": list(claims),
        "delivery_options": list(delivery),
        "payment_options": list(payment),
    }
    if available is not None:
        data["quantity"] = {"available": available, "minimum": "1"}
    return data


# The colleges the three co-ops share, with their weights in percent.
COLLEGES = (("workers", "50"), ("guests", "20"), ("partners", "30"))

MARCHE = DemoCoop(
    handle="marche",
    name="Marché équitable",
    summary="Coopérative de commerce équitable à Lyon. A fair-trade marketplace co-op in Lyon.",
    place=("Lyon", 45.7640, 4.8357),
    colleges=COLLEGES,
    members=(
        DemoMember("admin", "Claire Martin", "admin", "demo-marche-admin", "workers"),
        DemoMember("amina", "Amina Diallo", "member", "demo-marche-1", "partners"),
        DemoMember("joao", "João Ferreira", "member", "demo-marche-2", "partners"),
        DemoMember("lucie", "Lucie Bernard", "member", "demo-marche-3", "guests"),
    ),
    offers=(
        _offer(
            ("Miel de lavande, pot de 500 g", "Lavender honey, 500 g jar"),
            (
                "Miel de lavande récolté par une coopérative d'apiculteurs de Haute-Provence.",
                "Lavender honey from a beekeepers' co-operative in Haute-Provence.",
            ),
            "honey",
            "9.50",
            "piece",
            claims=("fair_trade", "organic"),
            delivery=("pickup", "postal_shipping"),
            available="60",
        ),
        _offer(
            ("Café arabica du Chiapas", "Chiapas arabica coffee"),
            (
                "Grains torréfiés à Lyon, achetés à la coopérative **Yachil** au Mexique.",
                "Beans roasted in Lyon, bought from the **Yachil** co-operative in Mexico.",
            ),
            "coffee",
            "14.00",
            "kg",
            claims=("fair_trade", "organic", "coop_made"),
            delivery=("pickup", "postal_shipping"),
            available="120",
        ),
        _offer(
            ("Thé vert de Darjeeling, 100 g", "Darjeeling green tea, 100 g"),
            (
                "Thé de printemps d'un jardin géré par ses cueilleuses.",
                "First-flush tea from a garden run by its pickers.",
            ),
            "tea",
            "6.80",
            "piece",
            claims=("fair_trade",),
        ),
        _offer(
            ("Chocolat noir 70 %, tablette de 100 g", "Dark chocolate 70%, 100 g bar"),
            (
                "Cacao de la coopérative Kuapa Kokoo au Ghana.",
                "Cocoa from the Kuapa Kokoo co-operative in Ghana.",
            ),
            "chocolate",
            "3.20",
            "piece",
            claims=("fair_trade", "organic"),
            available="300",
        ),
        _offer(
            ("Huile d'olive de Palestine", "Palestinian olive oil"),
            (
                "Huile vierge extra pressée à froid, récolte de l'année.",
                "Cold-pressed extra virgin oil from this year's harvest.",
            ),
            "oils",
            "12.00",
            "litre",
            claims=("fair_trade",),
        ),
        _offer(
            ("Quinoa royal de Bolivie", "Royal quinoa from Bolivia"),
            (
                "Quinoa de l'Altiplano, cultivé par l'ANAPQUI.",
                "Quinoa from the Altiplano, grown by ANAPQUI members.",
            ),
            "grains",
            "7.90",
            "kg",
            claims=("fair_trade", "organic"),
        ),
        _offer(
            ("Savon d'Alep", "Aleppo soap"),
            (
                "Savon à l'huile d'olive et de laurier, séché deux ans.",
                "Olive and laurel oil soap, dried for two years.",
            ),
            "soap_cosmetics",
            "5.50",
            "piece",
            claims=("fair_trade",),
        ),
        _offer(
            ("Panier tressé de Bolgatanga", "Bolgatanga woven basket"),
            (
                "Tressé à la main par une coopérative de vannières du nord du Ghana.",
                "Hand-woven by a women's basket co-operative in northern Ghana.",
            ),
            "crafts",
            "28.00",
            "piece",
            claims=("fair_trade", "coop_made"),
        ),
        _offer(
            ("Écharpe en alpaga", "Alpaca scarf"),
            (
                "Tricotée au Pérou, laine d'alpaga non teinte.",
                "Knitted in Peru from undyed alpaca wool.",
            ),
            "textiles",
            "39.00",
            "piece",
            claims=("fair_trade", "coop_made"),
        ),
        _offer(
            ("Poivre de Kampot, 50 g", "Kampot pepper, 50 g"),
            (
                "Poivre noir du Cambodge, indication géographique protégée.",
                "Black pepper from Cambodia, protected geographical indication.",
            ),
            "spices",
            "8.40",
            "piece",
            claims=("fair_trade", "organic"),
        ),
    ),
)

FOOD = DemoCoop(
    handle="food",
    name="Réseau alimentaire local",
    summary="Producteurs et mangeurs de la vallée de la Drôme. "
    "Growers and eaters of the Drôme valley.",
    place=("Die", 44.7537, 5.3700),
    colleges=COLLEGES,
    follow_policy="approve",
    members=(
        DemoMember("admin", "Nadia Roux", "admin", "demo-food-admin", "workers"),
        DemoMember("paul", "Paul Girard", "member", "demo-food-1", "guests"),
        DemoMember("sofia", "Sofia Moreau", "member", "demo-food-2", "guests"),
        DemoMember("hugo", "Hugo Lambert", "member", "demo-food-3", "partners"),
    ),
    offers=(
        _offer(
            ("Panier de légumes de saison", "Seasonal vegetable box"),
            (
                "Cinq à sept légumes de la semaine, cueillis la veille.",
                "Five to seven vegetables of the week, picked the day before.",
            ),
            "produce_boxes",
            "18.00",
            "box",
            claims=("organic", "local"),
            delivery=("pickup", "local_delivery"),
            payment=("cash", "bank_transfer", "local_currency"),
            available="40",
        ),
        _offer(
            ("Miel de châtaignier", "Chestnut honey"),
            (
                "Miel de montagne, pot de 500 g, du rucher des Glandasse.",
                "Mountain honey, 500 g jar, from the Glandasse apiary.",
            ),
            "honey",
            "8.00",
            "piece",
            claims=("local",),
            available="35",
        ),
        _offer(
            ("Pommes reinettes", "Reinette apples"),
            ("Vergers en agriculture biologique à Saillans.", "Organic orchards in Saillans."),
            "apples",
            "2.80",
            "kg",
            claims=("organic", "local"),
            available="200",
        ),
        _offer(
            ("Œufs plein air, la douzaine", "Free-range eggs, a dozen"),
            ("Poules élevées en plein air à Pontaix.", "Hens raised outdoors in Pontaix."),
            "eggs",
            "4.20",
            "piece",
            claims=("local",),
        ),
        _offer(
            ("Pain de campagne au levain", "Sourdough country loaf"),
            (
                "Cuit au feu de bois, farine de petit épeautre du Diois.",
                "Wood-fired, made with local einkorn flour.",
            ),
            "bread",
            "4.50",
            "piece",
            claims=("organic", "local"),
        ),
        _offer(
            ("Tomme de chèvre", "Goat's cheese tomme"),
            ("Affinée trois mois à la ferme.", "Aged three months on the farm."),
            "cheese",
            "22.00",
            "kg",
            claims=("local",),
        ),
        _offer(
            ("Yaourts fermiers, lot de 4", "Farm yoghurts, pack of 4"),
            ("Lait de vache entier, pots en verre consignés.", "Whole milk, returnable jars."),
            "dairy",
            "3.00",
            "piece",
            claims=("local",),
        ),
        _offer(
            ("Farine de petit épeautre", "Einkorn flour"),
            ("Moulue à la meule de pierre.", "Stone-ground."),
            "grains",
            "3.90",
            "kg",
            claims=("organic", "local"),
        ),
        _offer(
            ("Confiture de fraises", "Strawberry jam"),
            ("Fraises de Chamaloc, peu sucrée.", "Chamaloc strawberries, lightly sweetened."),
            "preserves",
            "5.20",
            "piece",
            claims=("local",),
        ),
        _offer(
            ("Jus de pomme", "Apple juice"),
            ("Pur jus pressé à la coopérative.", "Pure juice pressed at the co-op."),
            "juices",
            "3.50",
            "litre",
            claims=("organic", "local", "coop_made"),
        ),
        _offer(
            ("Livraison à vélo dans Die", "Bike delivery in Die"),
            (
                "Vos paniers livrés à vélo cargo le jeudi soir.",
                "Your boxes delivered by cargo bike on Thursday evenings.",
            ),
            "bike_courier",
            "4.00",
            "hour",
            delivery=("local_delivery",),
            payment=("cash", "local_currency"),
        ),
    ),
)

TOURISM = DemoCoop(
    handle="tourism",
    name="Escapades coopératives du Vercors",
    summary="Coopérative de tourisme multi-sociétaires : salariés, hôtes et partenaires. "
    "A multi-stakeholder tourism co-op: workers, guests and partners.",
    place=("Villard-de-Lans", 45.0714, 5.5531),
    colleges=COLLEGES,
    members=(
        DemoMember("admin", "Élise Faure", "admin", "demo-tourism-admin", "workers"),
        DemoMember("marie", "Marie Chabert", "member", "demo-tourism-1", "workers"),
        DemoMember("tom", "Tom Becker", "member", "demo-tourism-2", "guests"),
        DemoMember("ines", "Inès Garcia", "member", "demo-tourism-3", "partners"),
        DemoMember("yann", "Yann Le Gall", "member", "demo-tourism-4", "guests"),
    ),
    offers=(
        _offer(
            ("Nuit en gîte coopératif", "A night in a co-operative gîte"),
            (
                "Chambre double, petit déjeuner avec les produits du réseau.",
                "Double room, breakfast made with the network's produce.",
            ),
            "stays",
            "68.00",
            "night",
            claims=("coop_made",),
            delivery=("on_site",),
        ),
        _offer(
            ("Balade chez les producteurs", "A walk to the farms"),
            (
                "Une demi-journée à pied, de la fromagerie au moulin.",
                "Half a day on foot, from the cheese dairy to the mill.",
            ),
            "guided_tours",
            "15.00",
            "person",
            delivery=("on_site",),
        ),
        _offer(
            ("Location de vélo électrique", "Electric bike rental"),
            ("Casque et carte des itinéraires fournis.", "Helmet and route map included."),
            "bike_rental",
            "25.00",
            "day",
            delivery=("on_site",),
        ),
        _offer(
            ("Atelier cuisine des plantes sauvages", "Wild plants cooking workshop"),
            (
                "Cueillette et cuisine avec une cheffe du plateau.",
                "Foraging and cooking with a chef from the plateau.",
            ),
            "workshops",
            "45.00",
            "person",
            delivery=("on_site",),
        ),
        _offer(
            ("Visite d'une miellerie", "Visit to a honey farm"),
            (
                "Découverte des ruches et dégustation de miels du Vercors.",
                "See the hives and taste Vercors honeys.",
            ),
            "guided_tours",
            "12.00",
            "person",
            delivery=("on_site",),
        ),
        _offer(
            ("Randonnée accompagnée aux Hauts Plateaux", "Guided hike on the High Plateaus"),
            (
                "Journée avec un accompagnateur en montagne, pique-nique compris.",
                "A day with a mountain leader, picnic included.",
            ),
            "guided_tours",
            "35.00",
            "person",
            delivery=("on_site",),
        ),
        _offer(
            ("Salle de réunion à la journée", "Meeting room for the day"),
            (
                "Vingt places, vidéoprojecteur, pauses avec les produits locaux.",
                "Twenty seats, projector, breaks with local produce.",
            ),
            "room_hire",
            "120.00",
            "day",
            delivery=("on_site",),
        ),
        _offer(
            ("Covoiturage depuis la gare de Grenoble", "Car sharing from Grenoble station"),
            ("Navette partagée le vendredi soir.", "A shared shuttle on Friday evenings."),
            "car_sharing",
            "6.00",
            "person",
            delivery=("on_site",),
        ),
        _offer(
            ("Table d'hôtes à la ferme", "Farm dinner"),
            (
                "Repas de saison servi à la grande table.",
                "A seasonal meal served at the long table.",
            ),
            "catering",
            "28.00",
            "person",
            delivery=("on_site",),
        ),
    ),
)

COOPS = (MARCHE, FOOD, TOURISM)

# The food network's own proposal, and the one the tourism co-op shares with the others.
FOOD_PROPOSAL: dict[str, Any] = {
    "title": "Ouvrir un second point de retrait / Open a second pickup point",
    "text": (
        "Ouvrir un point de retrait des paniers à Crest, le samedi matin.\n\n"
        "Open a pickup point for the boxes in Crest, on Saturday mornings."
    ),
    "options": ["Pour / For", "Contre / Against", "Abstention / Abstain"],
    "rule": "majority",
    "quorum": "25%",
}
SHARED_PROPOSAL: dict[str, Any] = {
    "title": "Guide commun « Goûter le territoire » / A joint 'Taste the region' guide",
    "text": (
        "Financer ensemble un guide des producteurs, des artisans et des séjours, "
        "à parts égales entre les trois coopératives.\n\n"
        "Fund together a guide to the region's growers, makers and stays, "
        "shared equally by the three co-operatives."
    ),
    "options": ["Pour / For", "Contre / Against", "Abstention / Abstain"],
    "rule": "majority",
    "quorum": "20%",
    "counting_mode": "open",
    "allow_change": True,
    # The three co-ops share one set of colleges (workers, guests, partners): the
    # proposal weighs them across the co-ops, and its outcome has a chart per college.
    "colleges_weigh": True,
    "colleges": {name: f"{weight}%" for name, weight in COLLEGES},
}
SHARED_HOST = TOURISM
SHARED_WITH = (MARCHE, FOOD)


class DemoError(Exception):
    """The demo cannot start; the message says why."""


# --- the nodes -----------------------------------------------------------------------


@dataclass
class DemoNode:
    coop: DemoCoop
    port: int
    settings: Settings
    sock: socket.socket
    app: Starlette | None = None
    server: Any = None
    task: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def domain(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def actor(self) -> str:
        return f"http://{self.domain}/actors/{self.coop.handle}"

    @property
    def node(self) -> Node:
        assert self.app is not None
        node = self.app.state.node
        assert isinstance(node, Node)
        return node


@dataclass
class Proposals:
    closes_at: datetime
    shown: list[tuple[str, str, str, str]] = field(default_factory=list)


def bind_ports(first: int, count: int = len(COOPS)) -> list[socket.socket]:
    """Listening sockets on ``first`` and the ports after it, or :class:`DemoError`
    naming the port that is taken."""
    bound: list[socket.socket] = []
    try:
        for port in range(first, first + count):
            if port > 65535:
                raise DemoError(f"port {port} does not exist: choose a lower --port")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError as exc:
                sock.close()
                raise DemoError(
                    f"port {port} on {HOST} is taken ({exc.strerror or exc}); the demo needs "
                    f"ports {first} to {first + count - 1}: stop what uses it or choose "
                    "another --port"
                ) from None
            bound.append(sock)
    except DemoError:
        for sock in bound:
            sock.close()
        raise
    return bound


def prepare_data_dir(data_dir: Path | None) -> tuple[Path, bool]:
    """The directory the demo keeps its nodes in and whether it is temporary. A given
    directory must be empty, absent, or hold an earlier demo, which is replaced."""
    if data_dir is None:
        return Path(tempfile.mkdtemp(prefix="coopnode-demo-")), True
    if data_dir.exists():
        if not data_dir.is_dir():
            raise DemoError(f"{data_dir} is not a directory")
        if any(data_dir.iterdir()):
            if not (data_dir / MARKER).exists():
                raise DemoError(
                    f"{data_dir} is not empty and holds no demo: choose an empty or new "
                    "directory (an earlier demo's directory is replaced)"
                )
            for child in data_dir.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("coopnode demo\n", encoding="utf-8")
    return data_dir, False


def create_node(
    root: Path, coop: DemoCoop, port: int, clock: Clock, *, partners: tuple[str, ...] = ()
) -> Settings:
    """A local node for ``coop`` in ``root/HANDLE``: settings, database and co-op actor.
    SQLite in its directory, whatever the environment says, so that the three nodes
    never share a database. ``partners``: the co-ops whose shared proposals it takes
    part in without asking its admin."""
    from node.services.setup import create_coop, migrate_database
    from node.storage.database import Database

    data_dir = root / coop.handle
    settings = Settings(
        data_dir=data_dir,
        domain=f"{HOST}:{port}",
        name=coop.name,
        handle=coop.handle,
        summary=coop.summary,
        local=True,
        follow_policy=coop.follow_policy,
        database_url=f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}",
        accept_shared_from=partners,
    )
    write_config(settings)
    migrate_database(settings.database_url)
    db = Database(settings.database_url, readers=1)
    try:
        create_coop(settings, db, clock)
    finally:
        db.close()
    return settings


class _Server:
    """A uvicorn server that leaves signals to the demo (which stops all three)."""

    def __init__(self, app: Starlette) -> None:
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        self.server = Quiet(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="on",
                server_header=False,
                http="httptools",
                ws="none",
                # A request still open at Ctrl-C (a page waiting on a slow peer) gets
                # this long, then the connection is closed: the demo always stops.
                timeout_graceful_shutdown=5,
            )
        )

    async def serve(self, sock: socket.socket) -> None:
        try:
            await self.server.serve(sockets=[sock])
        except SystemExit:  # uvicorn's answer to a failed startup
            raise DemoError("a node failed to start (see the messages above)") from None

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def stop(self) -> None:
        self.server.should_exit = True

    def force(self) -> None:
        self.server.force_exit = True


# --- seeding -----------------------------------------------------------------------


async def _wait_for(
    what: str, check: Callable[[], Awaitable[bool]], seconds: float = SETTLE_TIMEOUT
) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise DemoError(f"the demo did not settle: {what} after {seconds:.0f} s")
        await asyncio.sleep(0.1)


async def seed_node(demo: DemoNode, joined_at: str) -> None:
    """Colleges, members and offers of one co-op."""
    from node.members.actions import add_member, set_colleges
    from node.offers import offering

    node = demo.node
    if demo.coop.colleges:
        await set_colleges(
            node,
            {"colleges": [{"name": n, "weight": w} for n, w in demo.coop.colleges]},
        )
    for member in demo.coop.members:
        data: dict[str, Any] = {
            "username": member.username,
            "name": member.name,
            "role": member.role,
            "password": member.password,
            "joined_at": joined_at,
        }
        if member.college is not None:
            data["college"] = member.college
        await add_member(node, data)
    name, latitude, longitude = demo.coop.place
    for offer in demo.coop.offers:
        located = {
            **offer,
            "location": {"name": name, "latitude": latitude, "longitude": longitude},
        }
        await offering.create_offer(node, located)


async def federate(nodes: list[DemoNode]) -> None:
    """Each co-op follows the others; returns once every follow is accepted and every
    catalogue holds the other co-ops' offers."""
    from node.catalogue import store
    from node.follows import federating
    from node.follows import store as follows

    for demo in nodes:
        for peer in nodes:
            if peer is not demo:
                await federating.follow(demo.node, f"{peer.coop.handle}@{peer.domain}")
        demo.node.delivery_wakeup.set()

    actors = {peer.actor for peer in nodes}

    async def approve_peers() -> None:
        """The co-ops that approve their followers approve the other two."""
        for demo in nodes:
            if demo.coop.follow_policy != "approve":
                continue
            coop_id = demo.node.peers.coop_id
            pending = await demo.node.db.read(
                lambda conn, coop_id=coop_id: follows.list_followers(  # type: ignore[misc]
                    conn, actor_id=coop_id, state=follows.PENDING
                )
            )
            for follower in pending:
                if follower.follower in actors:
                    await federating.answer_follower(demo.node, follower.follower, accept=True)

    async def settled() -> bool:
        await approve_peers()
        for demo in nodes:
            coop_id = demo.node.peers.coop_id
            for peer in nodes:
                if peer is demo:
                    continue

                def state(
                    conn: Connection, peer: DemoNode = peer, coop_id: int = coop_id
                ) -> tuple[str | None, int]:
                    return (
                        follows.following_state(conn, actor_id=coop_id, followed=peer.actor),
                        store.count(conn, actor=peer.actor),
                    )

                accepted, offers = await demo.node.db.read(state)
                if accepted != follows.ACCEPTED or offers < len(peer.coop.offers):
                    return False
        return True

    await _wait_for("the co-ops following each other and sharing their offers", settled)


class _EarlierClock:
    """A clock running ``by`` behind another."""

    def __init__(self, clock: Clock, by: timedelta) -> None:
        self.clock, self.by = clock, by

    def now(self) -> datetime:
        return self.clock.now() - self.by


def _proposing_node(node: Node, closes_at: datetime) -> Node:
    """The node to open a proposal with: ``node`` itself, or for a vote shorter than a
    node allows, a view of it whose clock runs behind, so that the vote opens a little
    in the past and still closes at ``closes_at``."""
    from node.governance.rules.proposal_input import MIN_DURATION

    left = closes_at - node.clock.now()
    if left >= MIN_DURATION:
        return node
    earlier = _EarlierClock(node.clock, MIN_DURATION - left + timedelta(seconds=1))
    return Node(settings=node.settings, db=node.db, http=node.http, clock=earlier)


async def open_proposals(nodes: list[DemoNode], closes_in: float) -> Proposals:
    """The food network's proposal and the shared one; returns once the shared one is
    open at its host and known to the other co-ops."""
    from node.governance import proposing
    from node.governance.rules.proposal_input import iso
    from node.storage.tables import remote_proposals

    by_handle = {demo.coop.handle: demo for demo in nodes}
    now = nodes[0].node.clock.now()
    closes_at = (now + timedelta(minutes=closes_in)).replace(microsecond=0)
    result = Proposals(closes_at=closes_at)

    async def propose(demo: DemoNode, data: dict[str, Any]) -> dict[str, Any]:
        node = demo.node
        author = node.urls.actor(next(m for m in demo.coop.members if m.role == "admin").username)
        created = await proposing.create_proposal(
            _proposing_node(node, closes_at),
            {**data, "closes_at": iso(closes_at)},
            author=author,
        )
        node.delivery_wakeup.set()
        node.governance_wakeup.set()
        return created

    food = by_handle[FOOD.handle]
    internal = await propose(food, FOOD_PROPOSAL)
    result.shown.append((FOOD.handle, "internal", internal["uri"], FOOD_PROPOSAL["title"]))

    host = by_handle[SHARED_HOST.handle]
    others = [by_handle[c.handle] for c in SHARED_WITH]
    shared = await propose(
        host,
        {**SHARED_PROPOSAL, "electorate": [f"{o.coop.handle}@{o.domain}" for o in others]},
    )
    uri = shared["uri"]
    with_whom = ", ".join(o.coop.handle for o in others)
    result.shown.append(
        (host.coop.handle, "shared", uri, f"{SHARED_PROPOSAL['title']} (with {with_whom})")
    )

    async def arrived() -> bool:
        row = await host.node.db.read(lambda conn: proposing.get_row(conn, shared["id"]))
        if row["state"] == proposing.SCHEDULED:
            host.node.governance_wakeup.set()
            return False
        for other in others:
            found = await other.node.db.read(
                lambda conn: conn.execute(
                    select(func.count())
                    .select_from(remote_proposals)
                    .where(remote_proposals.c.uri == uri)
                ).scalar_one()
            )
            if not found:
                return False
        return True

    await _wait_for("the shared proposal reaching the other co-ops", arrived)
    return result


# --- the output ----------------------------------------------------------------------


def describe(nodes: list[DemoNode], proposals: Proposals, root: Path, temporary: bool) -> str:
    """What the demo prints once it is ready: easy to read, easy to parse."""
    from node.governance.rules.proposal_input import iso

    width = max(len(d.coop.handle) for d in nodes)
    lines = ["", "Three co-ops are running on this machine, each following the other two:", ""]
    for demo in nodes:
        handle = demo.coop.handle
        lines.append(
            f"  node  {handle:<{width}}  {demo.base}  @{handle}@{demo.domain}  {demo.coop.name}"
        )
    lines += ["", "Demo logins (at each node's /login), with their role:", ""]
    for demo in nodes:
        for member in demo.coop.members:
            name = member.name + (f" ({member.college})" if member.college else "")
            lines.append(
                f"  login  {demo.coop.handle:<{width}}  {member.role:<6}  "
                f"{member.username:<5}  {member.password:<18}  {name}"
            )
    lines += ["", f"Proposals open for voting, closing at {iso(proposals.closes_at)}:", ""]
    for handle, kind, uri, title in proposals.shown:
        lines.append(f"  proposal  {handle:<{width}}  {kind:<8}  {uri}  {title}")
    lines.append("")
    where = "a temporary directory, deleted at exit" if temporary else "kept at exit"
    lines.append(f"Data: {root} ({where}).")
    return "\n".join(lines)


# --- running -----------------------------------------------------------------------


async def _start(nodes: list[DemoNode], clock: Clock) -> None:
    from node.app import create_app

    for demo in nodes:
        demo.app = create_app(demo.settings, clock=clock)
        server = _Server(demo.app)
        demo.server = server
        demo.task = asyncio.create_task(server.serve(demo.sock), name=f"demo-{demo.coop.handle}")

    async def started() -> bool:
        for demo in nodes:
            assert demo.task is not None
            if demo.task.done():
                demo.task.result()  # its error
                raise DemoError(f"the node {demo.coop.handle} stopped while starting")
        return all(d.server.started for d in nodes)

    await _wait_for("the servers starting", started, seconds=30)


async def _setup(
    nodes: list[DemoNode],
    *,
    clock: Clock,
    closes_in: float,
    root: Path,
    temporary: bool,
    echo: Callable[[str], None],
) -> None:
    began = time.monotonic()
    await _start(nodes, clock)
    joined_at = (clock.now() - timedelta(days=90)).date().isoformat()
    await asyncio.gather(*(seed_node(demo, joined_at) for demo in nodes))
    await federate(nodes)
    proposals = await open_proposals(nodes, closes_in)
    echo(describe(nodes, proposals, root, temporary))
    echo(f"Ready in {time.monotonic() - began:.1f} s. Press Ctrl-C to stop the demo.")


async def _run(
    nodes: list[DemoNode],
    *,
    clock: Clock,
    closes_in: float,
    root: Path,
    temporary: bool,
    echo: Callable[[str], None],
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        # A second Ctrl-C closes the open connections at once rather than letting them
        # finish; the workers still stop and the data directory is still cleaned up.
        if stop.is_set():
            for demo in nodes:
                if demo.server is not None:
                    demo.server.force()
        stop.set()

    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    setup = asyncio.create_task(
        _setup(nodes, clock=clock, closes_in=closes_in, root=root, temporary=temporary, echo=echo)
    )
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({setup, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if setup in done:
            setup.result()
            servers = {d.task for d in nodes if d.task is not None}
            done, _ = await asyncio.wait({stopping, *servers}, return_when=asyncio.FIRST_COMPLETED)
            for task in done & servers:
                task.result()
                raise DemoError("a node stopped on its own")
        echo("Stopping the demo...")
    finally:
        for task in (setup, stopping):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await setup
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        for demo in nodes:
            if demo.server is not None:
                demo.server.stop()
        tasks = [d.task for d in nodes if d.task is not None]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for sig in signals:
            loop.remove_signal_handler(sig)
        for outcome in results:
            if isinstance(outcome, DemoError):
                raise outcome


def run(
    *,
    port: int,
    data_dir: Path | None,
    closes_in: float,
    clock: Clock,
    echo: Callable[[str], None],
) -> None:
    """Run the demo until SIGINT or SIGTERM; :class:`DemoError` when it cannot."""
    sockets = bind_ports(port)
    root: Path | None = None
    temporary = False
    # Until the event loop takes the signals over, SIGTERM stops the demo as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        root, temporary = prepare_data_dir(data_dir)
        echo(f"Starting three co-ops on ports {port} to {port + len(COOPS) - 1}...")
        nodes = [
            DemoNode(
                coop=coop,
                port=port + i,
                settings=create_node(
                    root,
                    coop,
                    port + i,
                    clock,
                    # The three co-ops trust each other: shared proposals need no answer.
                    partners=tuple(
                        f"{other.handle}@{HOST}:{port + j}"
                        for j, other in enumerate(COOPS)
                        if j != i
                    ),
                ),
                sock=sock,
            )
            for i, (coop, sock) in enumerate(zip(COOPS, sockets, strict=True))
        ]
        main = _run(
            nodes, clock=clock, closes_in=closes_in, root=root, temporary=temporary, echo=echo
        )
        try:
            import uvloop
        except ImportError:  # not built for this platform
            asyncio.run(main)
        else:
            uvloop.run(main)
    except KeyboardInterrupt:  # while the nodes were being created
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for sock in sockets:
            sock.close()
        if temporary and root is not None:
            shutil.rmtree(root, ignore_errors=True)
    echo("The demo stopped.")
