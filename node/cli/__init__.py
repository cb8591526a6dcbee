"""The ``coopnode`` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from federation.clock import Clock
from node.errors import NodeError
from node.settings import (
    CONFIG_FILE,
    DEFAULT_DATA_DIR,
    Settings,
    SettingsError,
    load_settings,
    validate_domain,
    validate_handle,
    write_config,
)

F = TypeVar("F", bound=Callable[..., Any])

WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 (names, not a bind)


def data_dir_option(function: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="COOPNODE_DATA_DIR",
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help="Where the node keeps its settings, database and files.",
    )(function)


@click.group()
@click.version_option(package_name="coopnode")
def main() -> None:
    """coopnode: a co-operative's own node in the fediverse."""


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _settings(data_dir: Path) -> Settings:
    try:
        return load_settings(data_dir)
    except FileNotFoundError:
        raise click.ClickException(
            f"{data_dir} has no {CONFIG_FILE}: run `coopnode init` or `coopnode serve` first"
        ) from None
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _clock() -> Clock:
    """The clock of this command: the system clock, or moved by COOPNODE_CLOCK_OFFSET."""
    from node.clock import node_clock

    try:
        return node_clock()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _check_schema(settings: Settings) -> None:
    """Refuse to run on a database that is empty, outdated or from a newer coopnode."""
    from sqlalchemy.engine import make_url

    from node.services.setup import check_schema
    from node.storage.migrate import SchemaState

    try:
        state = check_schema(settings.database_url)
    except NodeError as exc:
        raise click.ClickException(exc.reason) from None
    if state is SchemaState.EMPTY:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        _fail(f"the database {where} has no coopnode schema: run `coopnode migrate`")


def _create_node(settings: Settings) -> None:
    """Migrate a new database and create the co-op in it (init, first local serve)."""
    from node.services.setup import migrate_database

    migrate_database(settings.database_url)
    _ensure_coop(settings)


def _ensure_coop(settings: Settings) -> None:
    from node.services import identity
    from node.services.setup import create_coop
    from node.storage.database import Database

    db = Database(settings.database_url, readers=1)
    try:
        if db.read_sync(lambda conn: identity.actor_exists(conn, settings.handle)):
            return
        token = create_coop(settings, db, _clock())
    finally:
        db.close()
    click.echo(f"Created the co-op {settings.name!r} as @{settings.handle}@{settings.domain}.")
    click.echo(f"Admin API token (shown once, keep it safe): {token}")


@main.command()
@click.option("--domain", required=True, help="The public host name, e.g. coop.example.")
@click.option("--name", required=True, help="The co-op's name, as people will see it.")
@click.option("--handle", default="coop", show_default=True, help="The co-op's account name.")
@click.option("--summary", default="", help="A short description of the co-op.")
@click.option(
    "--database-url",
    default="",
    help="postgresql://user:password@host/db (default: SQLite in the data directory).",
)
@data_dir_option
def init(
    domain: str, name: str, handle: str, summary: str, database_url: str, data_dir: Path
) -> None:
    """Set up a node for a public domain (served over https behind a reverse proxy)."""
    if (data_dir / CONFIG_FILE).exists():
        _fail(f"{data_dir} already holds a node; choose another --data-dir")
    try:
        settings = Settings(
            data_dir=data_dir,
            domain=validate_domain(domain),
            name=name.strip(),
            handle=validate_handle(handle),
            summary=summary,
            database_url=database_url,
        )
        if not settings.name:
            raise SettingsError("the co-op's name is empty")
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    write_config(settings)
    settings = _settings(data_dir)
    _create_node(settings)
    click.echo(f"Settings written to {settings.config_path}.")
    click.echo(
        f"Next: `coopnode serve --data-dir {data_dir}` behind a reverse proxy that serves "
        f"https://{settings.domain}/ (see deploy/)."
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--name", default="Local co-op", help="Name of a new local node.")
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (the reverse proxy usually does; it costs throughput).",
)
@click.option(
    "--workers/--no-workers",
    default=True,
    show_default=True,
    help="Run the background workers in this process; --no-workers (PostgreSQL only) "
    "leaves them to `coopnode worker` processes, so that answering HTTP has a core to itself.",
)
@data_dir_option
def serve(
    host: str,
    port: int,
    name: str,
    log_level: str,
    access_log: bool,
    workers: bool,
    data_dir: Path,
) -> None:
    """Run the node. A new data directory becomes a local node at http://HOST:PORT."""
    if "FORWARDED_ALLOW_IPS" in os.environ:
        # uvicorn's variable is not read: failing here beats a node that silently takes
        # its proxy for every client (and counts all their logins as one).
        _fail(
            "FORWARDED_ALLOW_IPS is not read: name the reverse proxy's addresses in "
            "COOPNODE_TRUSTED_PROXIES (or trusted_proxies in coopnode.toml) and unset it"
        )

    clock = _clock()
    new_node = not (data_dir / CONFIG_FILE).exists()
    if new_node:
        if host in WILDCARD_HOSTS:
            _fail("a local node needs a concrete --host (its ids are built on it)")
        write_config(
            Settings(
                data_dir=data_dir,
                domain=validate_domain(f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"),
                name=name,
                local=True,
            )
        )
    settings = _settings(data_dir)
    if settings.local and settings.domain != f"{host}:{port}":
        _fail(
            f"{data_dir} holds the local node {settings.domain}: serve it there "
            "(its ids are built on that address) or use another --data-dir"
        )
    if new_node:
        _create_node(settings)
    _check_schema(settings)
    if not workers:
        from node.storage.engine import is_sqlite

        if is_sqlite(settings.database_url):
            _fail(
                "with SQLite `coopnode serve` runs the workers itself (one writing process); "
                "--no-workers needs PostgreSQL"
            )

    import uvicorn

    from node.app import create_app

    click.echo(
        f"coopnode: {settings.name} (@{settings.handle}@{settings.domain}) on http://{host}:{port}/"
    )
    from node import heap

    app = create_app(settings, clock=clock, run_workers=workers)
    heap.settle()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        # The app reads X-Forwarded-* itself, from the trusted_proxies setting only.
        proxy_headers=False,
        server_header=False,
        lifespan="on",
        # uvloop and httptools: the fastest loop and HTTP parser uvicorn offers (the
        # inbox is the hot path). Named explicitly so that uvicorn probes for nothing.
        loop="uvloop",
        http="httptools",
        ws="none",
    )


@main.command()
@click.option(
    "--port",
    default=8100,
    show_default=True,
    type=click.IntRange(1, 65533),
    help="The first port: the co-ops listen on PORT, PORT+1 and PORT+2 of 127.0.0.1.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the three nodes in DIR (DIR/marche, DIR/food, DIR/tourism) and leave them "
    "there at exit; an earlier demo in DIR is replaced. Default: a temporary directory, "
    "deleted at exit.",
)
@click.option(
    "--closes-in",
    default=60.0 * 24 * 7,
    show_default=True,
    type=click.FloatRange(0.1, 60.0 * 24 * 365),
    help="Minutes until the two proposals close (fractions too: 0.5 is thirty seconds).",
)
def demo(port: int, data_dir: Path | None, closes_in: float) -> None:
    """Run three federated co-ops on this machine, seeded, until Ctrl-C.

    A fair-trade marketplace, a local food network and a multi-stakeholder tourism
    co-op follow each other; each has members who log in with the passwords printed,
    offers in French and English, and proposals open for voting.
    """
    from node.demo import DemoError, run

    clock = _clock()
    try:
        run(port=port, data_dir=data_dir, closes_in=closes_in, clock=clock, echo=click.echo)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@data_dir_option
def worker(data_dir: Path) -> None:
    """Run background workers in their own process (PostgreSQL only)."""
    settings = _settings(data_dir)
    from node.storage.engine import is_sqlite

    if is_sqlite(settings.database_url):
        _fail(
            "SQLite allows one writing process, so `coopnode serve` runs the workers itself; "
            "separate workers need PostgreSQL (set COOPNODE_DATABASE_URL)"
        )
    _check_schema(settings)
    from node.workers import run_workers

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    clock = _clock()
    from node import heap

    heap.settle()
    try:
        import uvloop  # the loop `serve` runs its workers on: about 13% more deliveries/s
    except ImportError:  # not built for this platform
        asyncio.run(run_workers(settings, clock=clock))
    else:
        uvloop.run(run_workers(settings, clock=clock))


@main.command()
@data_dir_option
def migrate(data_dir: Path) -> None:
    """Bring the database schema up to date (take a backup first)."""
    settings = _settings(data_dir)
    from node.services.setup import migrate_database
    from node.storage.engine import create_null_pool_engine
    from node.storage.migrate import HEAD_REVISION, current_revision

    engine = create_null_pool_engine(settings.database_url)
    try:
        before = current_revision(engine)
    finally:
        engine.dispose()
    if before == HEAD_REVISION:
        click.echo(f"The schema is up to date (revision {before}).")
    else:
        migrate_database(settings.database_url)
        click.echo(f"Migrated the schema from {before or 'nothing'} to {HEAD_REVISION}.")
    # A database created empty (a new PostgreSQL database) gets its co-op here.
    _ensure_coop(settings)


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.option("--name", default="admin", show_default=True, help="What the token is for.")
@data_dir_option
def tokens_create(name: str, data_dir: Path) -> None:
    """Create an admin token and print it once."""
    from node.services import tokens as token_service

    settings = _settings(data_dir)
    _check_schema(settings)
    token = token_service.new_token()
    now = _clock().now()
    _write(
        settings,
        lambda conn: token_service.store_token(conn, token, name=name, role="admin", now=now),
    )
    click.echo(token)


@tokens.command("list")
@data_dir_option
def tokens_list(data_dir: Path) -> None:
    """List tokens (their names and dates; tokens themselves are never stored)."""
    from node.services import tokens as token_service

    settings = _settings(data_dir)
    for info in _read(settings, token_service.list_tokens):
        state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
        click.echo(
            f"{info.id}\t{info.role}\t{info.created_at:%Y-%m-%d %H:%M}\t{state}\t{info.name}"
        )


@tokens.command("revoke")
@click.argument("token_id", type=int)
@data_dir_option
def tokens_revoke(token_id: int, data_dir: Path) -> None:
    """Revoke a token by its number (see `coopnode tokens list`)."""
    from node.services import tokens as token_service

    settings = _settings(data_dir)
    now = _clock().now()
    if not _write(settings, lambda conn: token_service.revoke_token(conn, token_id, now=now)):
        _fail(f"no active token {token_id}")
    click.echo(f"Token {token_id} revoked.")


@main.command()
@click.argument("handle")
@data_dir_option
def lookup(handle: str, data_dir: Path) -> None:
    """Find a fediverse account by its handle (user@host) or URL and show its actor.

    The fetches are signed as the co-op, so servers that answer only signed fetches
    (authorized fetch) answer this too."""
    import json

    settings = _settings(data_dir)
    actor = _with_node(settings, lambda node: node.peers.resolve(handle))
    summary = {k: actor.get(k) for k in ("id", "type", "preferredUsername", "name", "inbox")}
    click.echo(json.dumps(summary, indent=2, ensure_ascii=False))


def _with_node(settings: Settings, work: Callable[[Any], Any]) -> Any:
    """Run ``work(node)`` against a node built as ``serve`` builds it (database, signed
    HTTP client, domain policy), with federation and node errors shown plainly."""
    from federation.errors import FederationError
    from federation.webfinger import WebFingerError
    from node.runtime import Node, make_http_client
    from node.storage.database import Database

    _check_schema(settings)

    async def run() -> Any:
        db = Database(settings.database_url, readers=1)
        try:
            async with make_http_client(settings) as http:
                node = Node(settings=settings, db=db, http=http, clock=_clock())
                return await work(node)
        finally:
            db.close()

    try:
        return asyncio.run(run())
    except (FederationError, WebFingerError, NodeError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        field = getattr(exc, "field", None)
        raise click.ClickException(f"{field}: {reason}" if field else reason) from None


@main.command()
@click.argument("target")
@click.option(
    "--wait",
    type=float,
    default=15.0,
    show_default=True,
    help="Seconds to wait for the answer (0: do not wait).",
)
@data_dir_option
def follow(target: str, wait: float, data_dir: Path) -> None:
    """Follow another co-op (or any actor) by handle (coop@host) or actor URL."""
    import time

    from node.follows import federating
    from node.follows import store as follows

    settings = _settings(data_dir)
    result = _with_node(settings, lambda node: federating.follow(node, target))
    if not result.sent:
        click.echo(f"Already following {result.followed} (or asked to).")
    else:
        click.echo(f"Follow sent to {result.followed}.")
    deadline = time.monotonic() + wait
    state = follows.PENDING
    while wait > 0:
        rows = _read(settings, lambda conn: _following_state(conn, settings, result.followed))
        state = rows or follows.PENDING
        if state != follows.PENDING or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if state == follows.ACCEPTED:
        click.echo(f"{result.followed} accepted: its offers and proposals will reach this co-op.")
        _show_backfill(settings, result.followed, deadline + 300)
    elif state == follows.REJECTED:
        click.echo(f"{result.followed} refused the follow.")
    else:
        click.echo(
            "Waiting for their answer: it arrives while `coopnode serve` runs "
            "(see `coopnode following`)."
        )


def _show_backfill(settings: Settings, followed: str, deadline: float) -> None:
    """A progress bar over the import of the followed co-op's existing offers."""
    import time

    from node.offers import backfill

    def walk() -> dict[str, Any] | None:
        return _read(
            settings,
            lambda conn: backfill.progress(
                conn, actor_id=_coop_id(conn, settings), followed=followed
            ),
        )

    started = time.monotonic()
    found = walk()
    while found is None and time.monotonic() - started < 5:
        time.sleep(0.3)  # the running node starts the walk when the Accept arrives
        found = walk()
    if found is None:
        return  # it publishes no offers (not a co-op, or an older coopnode)
    total = found["total"]
    with click.progressbar(
        length=total or 0, label="Importing its offers", show_pos=True, width=30
    ) as bar:
        shown = 0
        while True:
            found = walk() or found
            if total is None and found["total"]:
                total = bar.length = found["total"]
            bar.update(found["imported"] - shown)
            shown = found["imported"]
            if found["state"] != backfill.RUNNING or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    if found["state"] == backfill.DONE:
        click.echo(f"{found['imported']} offers imported.")
    elif found["state"] == backfill.FAILED:
        click.echo(f"The import stopped: {found['last_error']}", err=True)
    else:
        click.echo(f"{found['imported']} offers so far; the import goes on in the background.")


def _following_state(conn: Any, settings: Settings, followed: str) -> str | None:
    from node.follows import store as follows

    return follows.following_state(conn, actor_id=_coop_id(conn, settings), followed=followed)


def _coop_id(conn: Any, settings: Settings) -> int:
    from node.services import identity

    actor_id = identity.find_actor_id(conn, settings.handle)
    if actor_id is None:
        raise click.ClickException(f"this database has no co-op @{settings.handle}")
    return actor_id


@main.command()
@click.argument("target")
@data_dir_option
def unfollow(target: str, data_dir: Path) -> None:
    """Stop following an actor (handle or URL); it is sent an Undo."""
    from node.follows import federating

    settings = _settings(data_dir)
    followed = _with_node(settings, lambda node: federating.unfollow(node, target))
    click.echo(f"No longer following {followed}.")


@main.command()
@click.option("--name", default=None, help="The co-op's new name.")
@click.option("--summary", default=None, help="The co-op's new description.")
@data_dir_option
def profile(name: str | None, summary: str | None, data_dir: Path) -> None:
    """Show the co-op's profile, or change it and send the change to every follower."""
    from node.follows import federating
    from node.services import identity

    settings = _settings(data_dir)
    if name is not None and not name.strip():
        _fail("the name cannot be empty")
    if name is not None or summary is not None:
        queued = _with_node(
            settings, lambda node: federating.update_profile(node, name=name, summary=summary)
        )
        click.echo(f"Profile updated; sent to {queued} inbox{'es' if queued != 1 else ''}.")
    coop = _read(settings, lambda conn: identity.get_actor(conn, settings.handle)).actor
    click.echo(f"{coop.name}\n{coop.summary}" if coop.summary else coop.name)


@main.group()
def offers() -> None:
    """The co-op's offers: publish, change, withdraw (JSON as the API takes it)."""


def _json_file(path: str) -> Any:
    import json

    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.ClickException(f"{path} is not JSON: {exc}") from None


@offers.command("create")
@click.argument("file")
@data_dir_option
def offers_create(file: str, data_dir: Path) -> None:
    """Publish the offer described in FILE (JSON; - reads standard input)."""
    from node.offers import offering

    settings = _settings(data_dir)
    data = _json_file(file)
    result = _with_node(settings, lambda node: offering.create_offer(node, data))
    click.echo(f"{result['id']}\t{result['uri']}")


@offers.command("update")
@click.argument("key")
@click.argument("file")
@data_dir_option
def offers_update(key: str, file: str, data_dir: Path) -> None:
    """Change offer KEY with the fields in FILE (JSON; - reads standard input)."""
    from node.offers import offering

    settings = _settings(data_dir)
    data = _json_file(file)
    result = _with_node(settings, lambda node: offering.update_offer(node, key, data))
    click.echo(f"Updated {result['uri']}.")


@offers.command("withdraw")
@click.argument("key")
@data_dir_option
def offers_withdraw(key: str, data_dir: Path) -> None:
    """Withdraw offer KEY; followers are told (Delete), a Tombstone stays at its id."""
    from node.offers import offering

    settings = _settings(data_dir)
    _with_node(settings, lambda node: offering.withdraw_offer(node, key))
    click.echo(f"Withdrew {key}.")


@offers.command("list")
@data_dir_option
def offers_list(data_dir: Path) -> None:
    """The co-op's own offers, newest first: key, status, title."""
    from sqlalchemy import select

    from node.storage.tables import offers as offers_table
    from node.urls import Urls

    settings = _settings(data_dir)
    prefix = Urls(settings.base_url).offer("")
    query = (
        select(offers_table.c.uri, offers_table.c.status, offers_table.c.title)
        .where(offers_table.c.local == 1)
        .order_by(offers_table.c.id.desc())
    )
    for row in _read(settings, lambda conn: conn.execute(query).all()):
        click.echo(f"{row.uri.removeprefix(prefix)}\t{row.status}\t{row.title}")


@main.group()
def proposals() -> None:
    """The co-op's governance proposals: open one, list them, see one's counts; answer
    other co-ops' invitations to shared proposals."""


@proposals.command("open")
@click.argument("file")
@data_dir_option
def proposals_open(file: str, data_dir: Path) -> None:
    """Open the proposal described in FILE (JSON as the API takes it; - reads standard
    input), as the co-op; members are told (Create of a Question)."""
    from node.governance import proposing

    settings = _settings(data_dir)
    data = _json_file(file)
    result = _with_node(settings, lambda node: proposing.create_proposal(node, data, author=None))
    click.echo(f"{result['id']}\t{result['state']}\t{result['uri']}")


@proposals.command("list")
@data_dir_option
def proposals_list(data_dir: Path) -> None:
    """Every proposal, newest first: key, state, voters, closing time, title."""
    from sqlalchemy import select

    from node.storage.tables import proposals as table

    settings = _settings(data_dir)
    query = select(
        table.c.key, table.c.state, table.c.counts, table.c.closes_at, table.c.title
    ).order_by(table.c.published.desc(), table.c.id.desc())
    import json

    for row in _read(settings, lambda conn: conn.execute(query).all()):
        voters = json.loads(row.counts)["voters"] if row.counts else 0
        closes = row.closes_at.strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"{row.key}\t{row.state}\t{voters} voters\tcloses {closes}\t{row.title}")


@proposals.command("show")
@click.argument("key")
@data_dir_option
def proposals_show(key: str, data_dir: Path) -> None:
    """Proposal KEY: its settings, counts as last published, and outcome once closed."""
    import json

    from node.governance import proposing
    from node.urls import Urls

    settings = _settings(data_dir)
    urls = Urls(settings.base_url)

    def read(conn: Any) -> Any:
        return proposing.get_row(conn, key)

    try:
        row = _read(settings, read)
    except NodeError as exc:
        raise click.ClickException(exc.reason) from None
    source = json.loads(row["source"])
    counts: dict[str, int] = json.loads(row["counts"])["counts"] if row["counts"] else {}
    click.echo(f"{row['title']}  ({row['state']})")
    click.echo(f"  {urls.proposal(row['key'])}")
    rule = source["rule"] or "multiple choice"
    if source["threshold"]:
        rule += f" {source['threshold']}"
    click.echo(f"  rule: {rule}; quorum {source['quorum']}; eligible {row['eligible']}")
    click.echo(f"  opens {source['opens_at']}, closes {source['closes_at']}")
    for option in source["options"]:
        n = counts.get(option["name"], 0)
        click.echo(f"  {n:>8}  {option['name']} ({option['role']})")
    if row["outcome"]:
        outcome = json.loads(row["outcome"])
        click.echo(f"  outcome: {outcome['reason']}")


@proposals.command("invitations")
@data_dir_option
def proposals_invitations(data_dir: Path) -> None:
    """Shared proposals other co-ops invited this one to, waiting for an answer: key,
    closing time, host, title. Members see one only once it is accepted."""
    from node.governance import sharing

    settings = _settings(data_dir)
    invited = _read(settings, sharing.invitations)
    if not invited:
        click.echo("No invitation waits for an answer.")
    for found in invited:
        click.echo(
            f"{found['id']}\tcloses {found.get('closes_at') or '?'}\t{found['host']}\t"
            f"{found.get('title') or found['uri']}"
        )


@proposals.command("accept")
@click.argument("key")
@data_dir_option
def proposals_accept(key: str, data_dir: Path) -> None:
    """Take part in the shared proposal KEY: its members see it and vote."""
    from node.governance import sharing

    settings = _settings(data_dir)
    result = _with_node(settings, lambda node: sharing.accept(node, key))
    click.echo(f"{key}\t{result['state']}: members see it and vote.")


@proposals.command("decline")
@click.argument("key")
@data_dir_option
def proposals_decline(key: str, data_dir: Path) -> None:
    """Decline the shared proposal KEY: its host is told (Reject)."""
    from node.governance import sharing

    settings = _settings(data_dir)
    _with_node(settings, lambda node: sharing.decline(node, key))
    click.echo(f"{key}\tdeclined: its host is told.")


@main.group()
def catalogue() -> None:
    """The catalogue of every offer this node knows (its own and its followed co-ops')."""


@catalogue.command("search")
@click.argument("words", nargs=-1)
@click.option("--category", multiple=True, help="A category slug (any of those given).")
@click.option("--claim", multiple=True, help="A claim such as organic (all of those given).")
@click.option("--coop", help="Only this co-op's offers (its actor URL).")
@click.option("--currency", help="ISO 4217 code, needed for a price range or price sort.")
@click.option("--min-price")
@click.option("--max-price")
@click.option("--near", help="latitude,longitude")
@click.option("--within-km")
@click.option("--status", default="active", show_default=True)
@click.option("--sort", help="relevance, recent, price or distance")
@click.option("--limit", default="20", show_default=True)
@data_dir_option
def catalogue_search(words: tuple[str, ...], data_dir: Path, **options: Any) -> None:
    """Search offers: words in any language, with filters; one line per offer."""
    from node.catalogue import search as catalogue_search_module
    from node.clock import node_clock

    settings = _settings(data_dir)
    params = {k: v for k, v in options.items() if v not in (None, ())}
    if words:
        params["q"] = " ".join(words)
    try:
        query = catalogue_search_module.parse_query(
            {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        )
    except NodeError as exc:
        raise click.ClickException(f"{exc.field}: {exc.reason}") from None
    now = node_clock().now()
    page = _read(settings, lambda conn: catalogue_search_module.search(conn, query, now=now))
    for hit in page.hits:
        price = "" if hit.price is None else f"{hit.price} {hit.currency}/{hit.unit}"
        where = hit.place or ""
        if hit.distance_km is not None:
            where += f" ({hit.distance_km:.1f} km)"
        click.echo("\t".join([hit.title, price, where, hit.status, hit.uri]))
    if not page.hits:
        click.echo("No offer matches.", err=True)


@main.group()
def members() -> None:
    """The co-op's members: add, link, confirm, change, remove; colleges and tokens."""


def _show_member(member: Any) -> None:
    state = f"left {member.left_at:%Y-%m-%d}" if member.left_at else member.state
    college = member.college or "-"
    where = "local" if member.local else "remote"
    click.echo(
        f"{member.id}\t{member.handle}\t{member.role}\t{college}\t"
        f"{member.joined_at:%Y-%m-%d}\t{where}\t{state}"
    )


@members.command("add")
@click.argument("username")
@click.option("--name", default=None, help="The name people see (the username by default).")
@click.option("--role", default="member", show_default=True, help="admin, member or observer.")
@click.option("--college", default=None, help="The member's college, if the co-op has some.")
@click.option("--joined", default=None, help="When membership began (2026-01-15; today).")
@click.option("--password", is_flag=True, help="Ask for a password to log in with.")
@data_dir_option
def members_add(
    username: str,
    name: str | None,
    role: str,
    college: str | None,
    joined: str | None,
    password: bool,
    data_dir: Path,
) -> None:
    """Add a local member, with a Person actor on this node."""
    from node.members.actions import add_member

    settings = _settings(data_dir)
    data: dict[str, Any] = {"username": username, "role": role}
    for key, value in (("name", name), ("college", college), ("joined_at", joined)):
        if value is not None:
            data[key] = value
    if password:
        data["password"] = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    member, _ = _with_node(settings, lambda node: add_member(node, data))
    _show_member(member)


@members.command("link")
@click.argument("target")
@click.option("--role", default="member", show_default=True, help="admin, member or observer.")
@click.option("--college", default=None, help="The member's college, if the co-op has some.")
@click.option("--joined", default=None, help="When membership began (2026-01-15; today).")
@data_dir_option
def members_link(
    target: str, role: str, college: str | None, joined: str | None, data_dir: Path
) -> None:
    """Link a member whose account is elsewhere (user@host or actor URL): recorded as
    pending, with the account shown, until `coopnode members confirm`."""
    import json

    from node.members.actions import add_member

    settings = _settings(data_dir)
    data: dict[str, Any] = {"remote": target, "role": role}
    for key, value in (("college", college), ("joined_at", joined)):
        if value is not None:
            data[key] = value
    member, actor = _with_node(settings, lambda node: add_member(node, data))
    click.echo(json.dumps(actor, indent=2, ensure_ascii=False))
    _show_member(member)
    click.echo(f"Check the account above, then: coopnode members confirm {member.id}")


@members.command("confirm")
@click.argument("member_id", type=int)
@data_dir_option
def members_confirm(member_id: int, data_dir: Path) -> None:
    """Confirm a pending remote member."""
    from node.members import store as service

    settings = _settings(data_dir)
    _show_member(_member_write(settings, lambda conn: service.confirm(conn, member_id)))


@members.command("list")
@click.option("--all", "everyone", is_flag=True, help="Include former members.")
@data_dir_option
def members_list(everyone: bool, data_dir: Path) -> None:
    """List members: number, handle, role, college, start date, local or remote, state."""
    from node.members import store as service

    settings = _settings(data_dir)
    found = _read(settings, lambda conn: service.list_members(conn, current_only=not everyone))
    for member in found:
        _show_member(member)
    if not found:
        click.echo("No members yet.", err=True)


@members.command("change")
@click.argument("member_id", type=int)
@click.option("--role", default=None, help="admin, member or observer.")
@click.option("--college", default=None, help="Another college.")
@data_dir_option
def members_change(member_id: int, role: str | None, college: str | None, data_dir: Path) -> None:
    """Change a member's role or college (a new role revokes the member's tokens)."""
    from node.members import store as service

    settings = _settings(data_dir)
    now = _clock().now()
    _show_member(
        _member_write(
            settings,
            lambda conn: service.change(conn, member_id, now=now, role=role, college=college),
        )
    )


@members.command("remove")
@click.argument("member_id", type=int)
@data_dir_option
def members_remove(member_id: int, data_dir: Path) -> None:
    """End a membership today (kept in the history) and revoke the member's tokens."""
    from node.members import store as service

    settings = _settings(data_dir)
    now = _clock().now()
    _show_member(_member_write(settings, lambda conn: service.remove(conn, member_id, now=now)))


@members.command("token")
@click.argument("member_id", type=int)
@data_dir_option
def members_token(member_id: int, data_dir: Path) -> None:
    """Create an API token acting as the member, with the member's role; print it once."""
    from node.members import store as service

    settings = _settings(data_dir)
    now = _clock().now()
    click.echo(
        _member_write(
            settings,
            lambda conn: service.issue_token(
                conn, service.get_member(conn, member_id), name="issued by the admin", now=now
            ),
        )
    )


@members.command("colleges")
@click.argument("weights", nargs=-1)
@data_dir_option
def members_colleges(weights: tuple[str, ...], data_dir: Path) -> None:
    """Show the colleges, or set them: NAME=PERCENT ... (summing to 100)."""
    from node.members import store as service

    settings = _settings(data_dir)
    if weights:
        wanted = []
        for item in weights:
            name, sep, weight = item.partition("=")
            if not sep or not name.strip():
                _fail(f"{item!r}: write NAME=PERCENT, e.g. workers=50")
            try:
                wanted.append(
                    service.College(name=name.strip(), weight_bp=service.parse_weight(weight))
                )
            except NodeError as exc:
                _fail(f"{item}: {exc.reason}")
        now = _clock().now()
        _member_write(settings, lambda conn: service.set_colleges(conn, wanted, now=now))
    for college in _read(settings, service.list_colleges):
        click.echo(f"{college.name}\t{service.percent(college.weight_bp)} %")


def _member_write(settings: Settings, unit: Callable[[Any], T]) -> T:
    """A write whose refusal (a NodeError) is shown as the command's error."""
    _check_schema(settings)
    try:
        return _write(settings, unit)
    except NodeError as exc:
        raise click.ClickException(
            f"{exc.field}: {exc.reason}" if exc.field else exc.reason
        ) from None


@main.command("following")
@data_dir_option
def following_list(data_dir: Path) -> None:
    """List whom the co-op follows, with the state of each follow."""
    from node.follows import store as follows

    settings = _settings(data_dir)

    def rows(conn: Any) -> list[Any]:
        actor_id = _coop_id(conn, settings)
        return follows.list_following(conn, actor_id=actor_id, state=None, limit=100_000)

    for row in _read(settings, rows):
        click.echo(f"{row.state}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.followed}")


@main.group()
def followers() -> None:
    """Who follows the co-op; approve or refuse those waiting."""


@followers.command("list")
@click.option("--pending", is_flag=True, help="Only the follows waiting for approval.")
@data_dir_option
def followers_list(pending: bool, data_dir: Path) -> None:
    """List followers (accepted and pending)."""
    from node.follows import store as follows

    settings = _settings(data_dir)

    def rows(conn: Any) -> list[Any]:
        actor_id = _coop_id(conn, settings)
        state = follows.PENDING if pending else None
        return follows.list_followers(conn, actor_id=actor_id, state=state, limit=100_000)

    for row in _read(settings, rows):
        click.echo(f"{row.state}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.follower}")


@followers.command("approve")
@click.argument("actor")
@data_dir_option
def followers_approve(actor: str, data_dir: Path) -> None:
    """Accept a pending follower (by actor URL)."""
    from node.follows import federating

    settings = _settings(data_dir)
    _with_node(settings, lambda node: federating.answer_follower(node, actor, accept=True))
    click.echo(f"{actor} is now a follower; an Accept is on its way.")


@followers.command("refuse")
@click.argument("actor")
@data_dir_option
def followers_refuse(actor: str, data_dir: Path) -> None:
    """Refuse a pending follower, or remove an accepted one (by actor URL)."""
    from node.follows import federating

    settings = _settings(data_dir)
    _with_node(settings, lambda node: federating.answer_follower(node, actor, accept=False))
    click.echo(f"{actor} does not follow the co-op; a Reject is on its way.")


@main.group()
def domains() -> None:
    """Other servers: block them, or allow them (for allow-list mode)."""


def _set_domain(data_dir: Path, host: str, policy: str, reason: str) -> tuple[str, dict[str, int]]:
    from node.services import domains as domain_service

    settings = _settings(data_dir)
    _check_schema(settings)
    try:
        host = domain_service.normalise(host)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    now = _clock().now()

    return host, _write(
        settings,
        lambda conn: domain_service.set_policy(conn, host, policy, reason=reason, now=now),
    )


@domains.command("block")
@click.argument("host")
@click.option("--reason", default="", help="Why, for the record.")
@data_dir_option
def domains_block(host: str, reason: str, data_dir: Path) -> None:
    """Block a domain and its subdomains: refused at the inbox, never fetched, never
    delivered to; its followers, the follows of it and anything queued from or to it
    are removed."""
    host, severed = _set_domain(data_dir, host, "blocked", reason)
    click.echo(f"{host} is blocked (within a few seconds on a running node).")
    removed = [f"{n} {what}" for what, n in severed.items() if n]
    if removed:
        click.echo("Removed or dropped: " + ", ".join(removed) + ".")


@domains.command("allow")
@click.argument("host")
@click.option("--reason", default="", help="Why, for the record.")
@data_dir_option
def domains_allow(host: str, reason: str, data_dir: Path) -> None:
    """Allow a domain (what allow-list mode and the "listed" follow policy accept)."""
    host, _ = _set_domain(data_dir, host, "allowed", reason)
    click.echo(f"{host} is allowed.")


@domains.command("clear")
@click.argument("host")
@data_dir_option
def domains_clear(host: str, data_dir: Path) -> None:
    """Remove the block or allowance of a domain."""
    host, _ = _set_domain(data_dir, host, "", "")
    click.echo(f"{host} is neither blocked nor allowed.")


@domains.command("list")
@data_dir_option
def domains_list(data_dir: Path) -> None:
    """List the domains the node decided about or had trouble delivering to."""
    from node.services import domains as domain_service

    settings = _settings(data_dir)
    for row in _read(settings, domain_service.list_domains):
        health = (
            "unavailable" if row["unavailable"] else ("failing" if row["failing_since"] else "")
        )
        click.echo(
            "\t".join(
                [
                    row["host"],
                    row["policy"] or "-",
                    health or "-",
                    row["reason"] or row["last_error"] or "",
                ]
            )
        )


@main.group("media")
def media_group() -> None:
    """Images for offers, stored and served by the node."""


@media_group.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--description", default="", help="What the image shows (alt text).")
@data_dir_option
def media_upload(file: Path, description: str, data_dir: Path) -> None:
    """Store a JPEG, PNG, WebP or GIF image; print its id and URL."""
    from node.services import media as media_service

    settings = _settings(data_dir)
    limit = settings.media_max_bytes
    size = file.stat().st_size
    if size > limit:
        _fail(media_service.too_large_reason(f"{file} is {size} bytes", limit))
    with file.open("rb") as fh:
        data = fh.read(limit + 1)  # a file growing meanwhile is still refused

    async def store(node: Any) -> Any:
        item = await media_service.store(
            node.db,
            settings.data_dir,
            data,
            actor_id=node.peers.coop_id,
            now=node.clock.now(),
            description=description,
            max_bytes=limit,
        )
        return item, node.urls.media(item.key, item.extension)

    item, url = _with_node(settings, store)
    click.echo(f"{item.key}\t{url}")


@main.command()
@data_dir_option
def deliveries(data_dir: Path) -> None:
    """The delivery queue, and the peers failing delivery with their reasons."""
    from node.services import domains as domain_service
    from node.services import outbox

    settings = _settings(data_dir)
    summary = _read(settings, outbox.queue_summary)
    click.echo(
        "Queue: "
        + ", ".join(
            f"{summary.get(s, 0)} {s}" for s in ("pending", "delivered", "failed", "dropped")
        )
    )
    failing = _read(settings, outbox.failing_hosts)
    if failing:
        click.echo("Failing peers:")
    for row in failing:
        click.echo(
            f"  {row['host']}: {row['pending']} waiting, {row['attempts']} attempts, "
            f"next {row['next_attempt_at']:%Y-%m-%d %H:%M} UTC: {row['last_error']}"
        )
    unavailable = sorted(_read(settings, domain_service.unavailable_hosts))
    if unavailable:
        click.echo("Unavailable (probed every few hours): " + ", ".join(unavailable))


T = TypeVar("T")


def _write(settings: Settings, unit: Callable[[Any], T]) -> T:
    from node.storage.database import Database

    db = Database(settings.database_url, readers=1)
    try:
        return db.write_sync(unit)
    finally:
        db.close()


def _read(settings: Settings, fn: Callable[[Any], T]) -> T:
    from node.storage.database import Database

    db = Database(settings.database_url, readers=1)
    try:
        return db.read_sync(fn)
    finally:
        db.close()


@main.command("audit")
@click.argument("url")
@click.option(
    "--allow-http",
    is_flag=True,
    help="Fetch http URLs and loopback addresses too (a local node, tests).",
)
@click.pass_context
def audit(ctx: click.Context, url: str, allow_http: bool) -> None:
    """Recount the closed proposal at URL from its published ballots and electorate.

    Verifies each ballot's proof against the voter's own key, recomputes the result
    with the same rules as the host, and prints published and recomputed figures side
    by side. Exits 0 when everything matches, 1 when it does not, 2 when the proposal
    cannot be reached or read. Needs no node: anyone can run it.
    """
    # Imported here: the auditor's client and proof code are not needed by other commands.
    from node.cli.audit import audit_command

    ctx.invoke(audit_command, url=url, allow_http=allow_http)
