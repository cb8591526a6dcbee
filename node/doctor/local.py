"""The checks made on this machine: the schema, the disk and the data directory's
permissions, the workers' heartbeats, the queues and the failing peers."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime, timedelta

from node.doctor import store
from node.doctor.findings import (
    Beat,
    Finding,
    MailHealth,
    disk_verdict,
    mail_verdict,
    ok,
    peers_verdict,
    problem,
    queues_verdict,
    skipped,
    stale_after,
    warning,
    workers_verdict,
)
from node.mail import store as mail_store
from node.services import heartbeats
from node.settings import CONFIG_FILE, Settings
from node.storage import migrate
from node.storage.database import Database
from node.storage.engine import create_null_pool_engine, shown_url, sqlite_file


def schema(settings: Settings) -> Finding:
    where = shown_url(settings.database_url)
    try:
        engine = create_null_pool_engine(settings.database_url)
        try:
            revision = migrate.current_revision(engine)
            state = migrate.schema_state(engine)
        finally:
            engine.dispose()
    except Exception as exc:  # any driver's error: the point is to say it plainly
        return problem(
            "schema",
            f"cannot open the database {where}: {str(exc).splitlines()[0][:200]}",
            "check database_url (or COOPNODE_DATABASE_URL) and that the database server runs",
        )
    if state is migrate.SchemaState.CURRENT:
        return ok("schema", f"up to date (revision {revision}) in {where}")
    if state is migrate.SchemaState.EMPTY:
        return problem("schema", f"{where} has no coopnode schema", "run `coopnode migrate`")
    if state is migrate.SchemaState.OUTDATED:
        return problem(
            "schema",
            f"revision {revision}, older than this coopnode's {migrate.HEAD_REVISION}",
            "take a backup (`coopnode backup`), then run `coopnode migrate` and restart the node",
        )
    return problem(
        "schema",
        f"revision {revision}, which this coopnode does not know (a newer one wrote it)",
        "upgrade coopnode to the version that migrated this database",
    )


def disk(settings: Settings) -> Finding:
    try:
        usage = shutil.disk_usage(settings.data_dir)
    except OSError as exc:
        return problem("disk", f"cannot read {settings.data_dir}: {exc.strerror}", "")
    return disk_verdict(str(settings.data_dir), usage.free, usage.total)


def permissions(settings: Settings) -> list[Finding]:
    """The data directory is this user's to write, and no one else's to read: it holds
    the co-op's private keys (in the SQLite database) and its settings."""
    found: list[Finding] = []
    data_dir = settings.data_dir
    user = _user_name(os.geteuid())
    writable = [data_dir, data_dir / CONFIG_FILE, data_dir / "media"]
    database = sqlite_file(settings.database_url)
    if database is not None:
        writable.append(database)
    cannot = [str(p) for p in writable if p.exists() and not os.access(p, os.W_OK)]
    if cannot:
        found.append(
            problem(
                "permissions",
                f"{user} cannot write {', '.join(cannot)}",
                "run the doctor as the user that runs the node (the deploy units' coopnode), "
                f"or give that user the directory: chown -R coopnode {data_dir}",
            )
        )
    try:
        mode = data_dir.stat().st_mode
    except OSError as exc:
        return [problem("permissions", f"cannot read {data_dir}: {exc.strerror}", "")]
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        found.append(
            warning(
                "permissions",
                f"{data_dir} is open to other users of this machine "
                f"(mode {stat.S_IMODE(mode):o}); it holds the co-op's private keys",
                f"chmod 700 {data_dir}",
            )
        )
    config = data_dir / CONFIG_FILE
    if config.exists() and config.stat().st_mode & stat.S_IWOTH:
        found.append(
            problem(
                "permissions",
                f"anyone on this machine may change {config}",
                f"chmod 600 {config}",
            )
        )
    if not found:
        found.append(ok("permissions", f"{data_dir} is {user}'s to write and closed to others"))
    return found


def _user_name(uid: int) -> str:
    try:
        import pwd  # not on every platform: the number says as much

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"user {uid}"


async def from_database(
    db: Database, *, loops: dict[str, float], now: datetime, mail_on: bool = False
) -> list[Finding]:
    """The workers, queues, peers and email, as the database records them. ``loops``:
    each background loop the node runs, by name, with the seconds it idles between
    rounds."""
    try:
        beats = await db.read(heartbeats.latest)
        backlog = await db.read(lambda conn: store.backlog(conn, now=now))
        failing = await db.read(store.failing_peers)
        mail = await db.read(lambda conn: mail_store.health(conn, since=now - timedelta(days=1)))
    except Exception as exc:  # reported by the schema line; say why these are missing
        reason = str(exc).splitlines()[0][:200]
        return [
            skipped(check, f"the database could not be read: {reason}")
            for check in ("workers", "queues", "peers", "email")
        ]
    limits = {name: stale_after(idle, heartbeats.BEAT_EVERY) for name, idle in loops.items()}
    return [
        workers_verdict(
            limits,
            [Beat(b.poller, b.hostname, b.pid, b.beat_at) for b in beats],
            now=now,
        ),
        queues_verdict(backlog, now=now),
        peers_verdict(failing, now=now),
        mail_verdict(
            mail_on,
            MailHealth(
                mail.waiting,
                mail.oldest_waiting,
                mail.last_error,
                mail.sent_since,
                mail.failed_since,
            ),
            now=now,
        ),
    ]
