"""Setting a node up and running it: ``init``, ``serve``, ``worker`` and ``migrate``.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from pathlib import Path

import click

from node import logs
from node.cli.common import (
    check_schema,
    command_clock,
    data_dir_option,
    fail,
    settings_of,
)
from node.settings import (
    CONFIG_FILE,
    Settings,
    SettingsError,
    validate_domain,
    validate_handle,
    write_config,
)

WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 (names, not a bind)
log_format_option = click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default="text",
    show_default=True,
    help="json: one JSON object a line (time, level, logger, message, exception), "
    "for log shippers.",
)


def check_port_free(host: str, port: int) -> None:
    """Fail unless ``host:port`` can be listened on now: bound and let go at once, with
    the same ``SO_REUSEADDR`` the server sets, so that a port another program listens on
    is refused but one left in TIME_WAIT by a stopped node is not."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        fail(f"cannot listen on {host!r}: {exc.strerror}")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(
                    f"port {port} on {host} is in use (another coopnode, or another "
                    "program): stop it or choose another --port; nothing was changed"
                )
            fail(f"cannot listen on {host}:{port}: {exc.strerror}; nothing was changed")


def create_node(settings: Settings) -> None:
    """Migrate a new database and create the co-op in it (init, first local serve)."""
    # Imported here to keep start-up fast: the database layer loads SQLAlchemy.
    from node.services.setup import migrate_database

    migrate_database(settings.database_url)
    ensure_coop(settings)


def ensure_coop(settings: Settings) -> None:
    """Create the co-op and its first admin token unless the database has it already."""
    # Imported here to keep start-up fast.
    from node.services import identity
    from node.services.setup import create_coop
    from node.storage.database import Database

    db = Database(settings.database_url, readers=1)
    try:
        if db.read_sync(lambda conn: identity.actor_exists(conn, settings.handle)):
            return
        token = create_coop(settings, db, command_clock())
    finally:
        db.close()
    click.echo(f"Created the co-op {settings.name!r} as @{settings.handle}@{settings.domain}.")
    click.echo(f"Admin API token (shown once, keep it safe): {token}")


@click.command()
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
        fail(f"{data_dir} already holds a node; choose another --data-dir")
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
    settings = settings_of(data_dir)
    create_node(settings)
    click.echo(f"Settings written to {settings.config_path}.")
    click.echo(
        f"Next: `coopnode serve --data-dir {data_dir}` behind a reverse proxy that serves "
        f"https://{settings.domain}/ (see deploy/)."
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--name", default="Local co-op", help="Name of a new local node.")
@click.option("--log-level", default="info", show_default=True)
@log_format_option
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
    log_format: str,
    access_log: bool,
    workers: bool,
    data_dir: Path,
) -> None:
    """Run the node. A new data directory becomes a local node at http://HOST:PORT."""
    if "FORWARDED_ALLOW_IPS" in os.environ:
        # uvicorn's variable is not read: failing here beats a node that silently takes
        # its proxy for every client (and counts all their logins as one).
        fail(
            "FORWARDED_ALLOW_IPS is not read: name the reverse proxy's addresses in "
            "COOPNODE_TRUSTED_PROXIES (or trusted_proxies in coopnode.toml) and unset it"
        )

    clock = command_clock()
    new_node = not (data_dir / CONFIG_FILE).exists()
    if new_node:
        if host in WILDCARD_HOSTS:
            fail("a local node needs a concrete --host (its ids are built on it)")
        # Before anything is written: a new local node is tied to this address for good.
        check_port_free(host, port)
        write_config(
            Settings(
                data_dir=data_dir,
                domain=validate_domain(f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"),
                name=name,
                local=True,
            )
        )
    settings = settings_of(data_dir)
    if settings.local and settings.domain != f"{host}:{port}":
        fail(
            f"{data_dir} holds the local node {settings.domain}: serve it there "
            "(its ids are built on that address) or use another --data-dir"
        )
    if new_node:
        create_node(settings)
    check_schema(settings)
    if not workers:
        # Imported here to keep start-up fast.
        from node.storage.engine import is_sqlite

        if is_sqlite(settings.database_url):
            fail(
                "with SQLite `coopnode serve` runs the workers itself (one writing process); "
                "--no-workers needs PostgreSQL"
            )
    if not new_node:
        check_port_free(host, port)

    # Imported here to keep start-up fast: the server and the application are the
    # heaviest imports of all, needed by this command only.
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
        log_config=(
            logs.json_log_config(log_level)
            if log_format == "json"
            else uvicorn.config.LOGGING_CONFIG
        ),
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


@click.command()
@log_format_option
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Show this process's metrics (its rounds, deliveries, votes) at "
    "http://127.0.0.1:PORT/metrics; the queue depths are on the node's /metrics.",
)
@data_dir_option
def worker(log_format: str, metrics_port: int | None, data_dir: Path) -> None:
    """Run background workers in their own process (PostgreSQL only)."""
    settings = settings_of(data_dir)
    # Imported here to keep start-up fast.
    from node.storage.engine import is_sqlite

    if is_sqlite(settings.database_url):
        fail(
            "SQLite allows one writing process, so `coopnode serve` runs the workers itself; "
            "separate workers need PostgreSQL (set COOPNODE_DATABASE_URL)"
        )
    check_schema(settings)
    from node.workers import run_workers

    logs.configure(log_format)
    if metrics_port is not None:
        # Imported here: only a worker that shows its metrics loads the client.
        from prometheus_client import start_http_server

        from node.services.metrics import REGISTRY

        # On loopback only: the figures are for a scraper on this machine.
        start_http_server(metrics_port, addr="127.0.0.1", registry=REGISTRY)
    clock = command_clock()
    from node import heap

    heap.settle()
    try:
        import uvloop  # the loop `serve` runs its workers on: about 13% more deliveries/s
    except ImportError:  # not built for this platform
        asyncio.run(run_workers(settings, clock=clock))
    else:
        uvloop.run(run_workers(settings, clock=clock))


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be done, and change nothing.")
@data_dir_option
def migrate(dry_run: bool, data_dir: Path) -> None:
    """Bring the database schema up to date (take a backup first).

    It says first from which revision to which, by which steps. With SQLite, stop the
    node first: it refuses while another process has the database open. With PostgreSQL
    it runs while the node serves when every step only adds (restart the node after)."""
    settings = settings_of(data_dir)
    # Imported here to keep start-up fast.
    from node.services.setup import migrate_database, plan_migration

    plan = plan_migration(settings.database_url)
    if plan.refused and not plan.steps:
        fail(plan.refused)
    if not plan.steps:
        click.echo(f"The schema is up to date (revision {plan.current}).")
    else:
        start = plan.current or "nothing (an empty database)"
        click.echo(f"The schema goes from {start} to {plan.head}, in {len(plan.steps)} step(s):")
        for step in plan.steps:
            click.echo(f"  {step.revision}  {step.title}")
        if plan.refused:
            fail(plan.refused)
        if dry_run:
            click.echo("Dry run: nothing was changed.")
            return
        if plan.others:
            click.echo(
                f"{plan.others} other session(s) have the database open: they wait for the "
                "migration; restart `coopnode serve` and `coopnode worker` after it to run "
                "this version."
            )
        migrate_database(settings.database_url)
        click.echo(f"Migrated the schema from {plan.current or 'nothing'} to {plan.head}.")
        if plan.vacuum is not None:
            click.echo(
                f"These steps rewrote every row of {', '.join(plan.to_vacuum)}: PostgreSQL "
                "keeps each old row until it is vacuumed, and a large table stays twice its "
                "size and slower to search. Before starting the processes again, run (as "
                "the database's owner; VACUUM FULL locks the table while it runs, 13 s for "
                f"1,000,000 offers on 2 cores):\n  {plan.vacuum}"
            )
    if not dry_run:
        # A database created empty (a new PostgreSQL database) gets its co-op here.
        ensure_coop(settings)


COMMANDS = (init, serve, worker, migrate)
