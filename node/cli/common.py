"""What every ``coopnode`` command shares: the ``--data-dir`` option, reading the
settings, the clock, checking the schema, and running work against the database or
against a whole node, with refusals shown as the command's error.

Only click and the settings are imported at the top: ``coopnode --help`` and every
command start without loading the database layer or the HTTP stack until they need it.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from federation.clock import Clock
from node.errors import NodeError
from node.settings import CONFIG_FILE, DEFAULT_DATA_DIR, Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def data_dir_option(function: F) -> F:
    """The ``--data-dir`` option every command on a node takes (or COOPNODE_DATA_DIR)."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="COOPNODE_DATA_DIR",
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help="Where the node keeps its settings, database and files.",
    )(function)


def fail(message: str) -> NoReturn:
    """Stop the command with ``message`` as its error (exit status 1)."""
    raise click.ClickException(message)


def settings_of(data_dir: Path) -> Settings:
    """The settings of the node in ``data_dir``, or the command's error saying why not."""
    try:
        return load_settings(data_dir)
    except FileNotFoundError:
        raise click.ClickException(
            f"{data_dir} has no {CONFIG_FILE}: run `coopnode init` or `coopnode serve` first"
        ) from None
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def command_clock() -> Clock:
    """The clock of this command: the system clock, or moved by COOPNODE_CLOCK_OFFSET."""
    # Imported here to keep start-up fast.
    from node.clock import node_clock

    try:
        return node_clock()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def check_schema(settings: Settings) -> None:
    """Refuse to run on a database that is empty, outdated or from a newer coopnode."""
    # Imported here to keep start-up fast: the database layer loads SQLAlchemy.
    from node.services.setup import check_schema as schema_state
    from node.storage.engine import shown_url
    from node.storage.migrate import SchemaState

    try:
        state = schema_state(settings.database_url)
    except NodeError as exc:
        raise click.ClickException(exc.reason) from None
    if state is SchemaState.EMPTY:
        where = shown_url(settings.database_url)
        fail(f"the database {where} has no coopnode schema: run `coopnode migrate`")


def write(settings: Settings, unit: Callable[[Any], T]) -> T:
    """Run ``unit(connection)`` in one write transaction on the node's database."""
    # Imported here to keep start-up fast.
    from node.storage.database import Database

    db = Database(settings.database_url, readers=1)
    try:
        return db.write_sync(unit)
    finally:
        db.close()


def read(settings: Settings, fn: Callable[[Any], T]) -> T:
    """Run ``fn(connection)`` on a read connection to the node's database."""
    # Imported here to keep start-up fast.
    from node.storage.database import Database

    db = Database(settings.database_url, readers=1)
    try:
        return db.read_sync(fn)
    finally:
        db.close()


def with_node(settings: Settings, work: Callable[[Any], Any]) -> Any:
    """Run ``work(node)`` against a node built as ``serve`` builds it (database, signed
    HTTP client, domain policy), with federation and node errors shown plainly."""
    # Imported here to keep start-up fast: the runtime loads the HTTP client.
    from federation.errors import FederationError
    from federation.webfinger import WebFingerError
    from node.runtime import Node, make_http_client
    from node.storage.database import Database

    check_schema(settings)

    async def run() -> Any:
        db = Database(settings.database_url, readers=1)
        try:
            async with make_http_client(settings) as http:
                node = Node(settings=settings, db=db, http=http, clock=command_clock())
                return await work(node)
        finally:
            db.close()

    try:
        return asyncio.run(run())
    except (FederationError, WebFingerError, NodeError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        field = getattr(exc, "field", None)
        raise click.ClickException(f"{field}: {reason}" if field else reason) from None


def coop_id(conn: Any, settings: Settings) -> int:
    """The database id of the co-op's actor, or the command's error if it has none."""
    # Imported here to keep start-up fast.
    from node.services import identity

    actor_id = identity.find_actor_id(conn, settings.handle)
    if actor_id is None:
        raise click.ClickException(f"this database has no co-op @{settings.handle}")
    return actor_id


def json_file(path: str) -> Any:
    """The JSON in the file at ``path`` (``-``: standard input), or the command's error."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.ClickException(f"{path} is not JSON: {exc}") from None
