"""The demo's nodes: their listening sockets, their data directory, each node's
settings and database, and the uvicorn server each runs in the demo's process."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from federation.clock import Clock
from node.demo.coops import DemoCoop
from node.demo.errors import DemoError
from node.runtime import Node
from node.services.setup import create_coop, migrate_database
from node.settings import DATABASE_FILE, Settings, write_config
from node.storage.database import Database

HOST = "127.0.0.1"
# The file that tells an earlier demo's directory (replaced) from anything else (kept).
MARKER = ".coopnode-demo"


@dataclass
class DemoNode:
    """One co-op of the demo: its node's settings, socket, application and server."""

    coop: DemoCoop
    port: int
    settings: Settings
    sock: socket.socket
    app: Starlette | None = None
    server: Server | None = None
    task: asyncio.Task[None] | None = None
    # Once seeded: the URIs of its offers, in the data file's order, and the actor of
    # each member by username (who orders as that member).
    offers: list[str] = field(default_factory=list)
    actors: dict[str, int] = field(default_factory=dict)

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


def bind_ports(first: int, count: int) -> list[socket.socket]:
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


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the demo (which stops all three)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Server:
    """One node's uvicorn server in the demo's event loop."""

    def __init__(self, app: Starlette) -> None:
        self.server = _QuietServer(
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
