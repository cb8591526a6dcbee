"""A throwaway PostgreSQL cluster for tests and benchmarks.

Each cluster lives in its own temporary directory, listens only on 127.0.0.1 at a
free port and is destroyed on ``stop()``, so runs never depend on (or damage) a
server that happens to be installed on the machine.

    with PostgresCluster() as pg:
        url = pg.create_database()  # postgresql+psycopg://postgres@127.0.0.1:PORT/NAME

Server programs are located by :func:`find_pg_bin`; set ``COOPNODE_PG_BIN`` to
point at a specific PostgreSQL ``bin`` directory.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

__all__ = ["PostgresCluster", "PostgresClusterError", "find_pg_bin"]

PG_BIN_ENV = "COOPNODE_PG_BIN"
SERVER_USER = "postgres"
HOST = "127.0.0.1"
INSTALL_HINT = (
    "PostgreSQL server programs (initdb, pg_ctl) were not found; install them with "
    f"`apt-get install postgresql` or set {PG_BIN_ENV} to their bin directory"
)

_REQUIRED_PROGRAMS = ("initdb", "pg_ctl")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SETTING_NAME = re.compile(r"[a-z_][a-z0-9_.]*")
_RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})
_START_ATTEMPTS = 3
_PORT_IN_USE_MARKERS = ("could not bind", "Address already in use", "could not create any TCP")

# Crash safety is pointless for a cluster that is deleted at the end of the run,
# and these three settings make DDL-heavy test suites several times faster.
_FAST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class PostgresClusterError(RuntimeError):
    """Raised when the throwaway cluster cannot be created, started or used."""


def _has_server_programs(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _REQUIRED_PROGRAMS)


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        result = subprocess.run(
            [pg_config, "--bindir"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = result.stdout.strip()
    return Path(out) if out else None


def _version_key(directory: Path) -> tuple[int, ...]:
    # Directory names are versions such as "9.6", "15" or "16"; sort numerically.
    try:
        return tuple(int(part) for part in directory.parent.name.split("."))
    except ValueError:
        return (-1,)


def _debian_bindirs() -> list[Path]:
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return []
    return sorted(root.glob("*/bin"), key=_version_key, reverse=True)


def _initdb_on_path_dir() -> Path | None:
    initdb = shutil.which("initdb")
    # Resolve symlinks (e.g. /usr/local/bin/initdb -> .../15/bin/initdb) so that
    # pg_ctl and postgres are looked up next to the real binary.
    return Path(initdb).resolve().parent if initdb else None


def find_pg_bin() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None.

    Candidates, first usable one wins: ``$COOPNODE_PG_BIN``, ``pg_config
    --bindir``, the highest version under ``/usr/lib/postgresql/*/bin`` (Debian
    keeps server programs off PATH there), the directory of ``initdb`` on PATH.
    """
    override = os.environ.get(PG_BIN_ENV)
    if override:
        path = Path(override)
        if _has_server_programs(path):
            return path
        warnings.warn(
            f"{PG_BIN_ENV}={override!r} has no initdb/pg_ctl; looking elsewhere",
            stacklevel=2,
        )
    candidates: list[Path | None] = [_pg_config_bindir(), *_debian_bindirs()]
    candidates.append(_initdb_on_path_dir())
    for candidate in candidates:
        if candidate is not None and _has_server_programs(candidate):
            return candidate
    return None


def _free_port() -> int:
    """Ask the kernel for an unused loopback port (may race; start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _conf_value(value: str | int) -> str:
    text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _check_identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"unsafe database name {name!r}: use lowercase letters, digits and _ "
            "(not starting with a digit, at most 63 characters)"
        )
    return name


def _is_root() -> bool:
    return os.geteuid() == 0


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(server log unavailable: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class PostgresCluster:
    """A private PostgreSQL server in a temporary directory.

    ``durable=False`` (the default, for tests) turns off fsync, synchronous
    commit and full-page writes; ``durable=True`` keeps PostgreSQL's defaults so
    benchmarks measure realistic write costs. ``settings`` adds or overrides
    server parameters (written to ``postgresql.conf`` last); ``environment``, variables
    of the server's environment (as Debian's ``environment`` file gives). ``parent_dir``
    defaults to the system temp dir; a tmpfs such as ``/dev/shm`` roughly halves
    ``initdb`` time where it is large enough (a cluster needs about 40 MB).
    """

    def __init__(
        self,
        *,
        durable: bool = False,
        max_connections: int = 200,
        settings: Mapping[str, str | int] | None = None,
        environment: Mapping[str, str] | None = None,
        bin_dir: Path | str | None = None,
        parent_dir: Path | str | None = None,
    ) -> None:
        self.durable = durable
        self.max_connections = max_connections
        self.settings: dict[str, str | int] = dict(settings or {})
        for key in self.settings:
            if not _SETTING_NAME.fullmatch(key):
                raise ValueError(f"invalid server setting name {key!r}")
        self.environment = dict(environment or {})
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._parent_dir = parent_dir
        self._resolved_bin: Path | None = None
        self._base: Path | None = None
        self._port: int | None = None
        self._running = False
        self._owner_pid = os.getpid()

    # -- context manager -------------------------------------------------

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- paths and URLs ---------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """The temporary directory holding data, socket and log."""
        if self._base is None:
            raise PostgresClusterError("cluster is not started")
        return self._base

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "server.log"

    @property
    def port(self) -> int:
        if self._port is None or not self._running:
            raise PostgresClusterError("cluster is not running")
        return self._port

    @property
    def running(self) -> bool:
        return self._running

    def url(self, database: str) -> str:
        """SQLAlchemy URL for ``database`` on this cluster (trust auth, no password)."""
        return f"postgresql+psycopg://{SERVER_USER}@{HOST}:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` maintenance database."""
        return self.url("postgres")

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Create, configure and start the cluster; clean up fully on failure."""
        if self._running:
            raise PostgresClusterError("cluster is already running")
        bin_dir = self._bin_dir or find_pg_bin()
        if bin_dir is None or not _has_server_programs(bin_dir):
            raise PostgresClusterError(INSTALL_HINT)
        self._resolved_bin = bin_dir

        self._owner_pid = os.getpid()
        self._base = Path(tempfile.mkdtemp(prefix="coopnode-pg-", dir=self._parent_dir))
        # Registered before anything can fail so an interrupted start is cleaned up.
        atexit.register(self.stop)
        try:
            if _is_root():
                self._chown_to_server_user(self._base)
            self._initdb()
            self._write_config()
            self._start_server()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server immediately and delete its directory; idempotent."""
        if os.getpid() != self._owner_pid:
            # A forked child inherited this object (and the atexit hook): the
            # cluster belongs to the parent.
            return
        base = self._base
        self._running = False
        if base is None:
            return
        atexit.unregister(self.stop)
        try:
            self._shutdown_server(base / "data")
        finally:
            self._remove_tree(base)
            self._base = None
            self._port = None

    # -- databases -------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (random name if None) and return its URL."""
        db = _check_identifier(name) if name is not None else f"t_{secrets.token_hex(8)}"
        if db in _RESERVED_DATABASES:
            raise ValueError(f"{db!r} is a built-in database")
        self._admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        return self.url(db)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting any sessions (pooled engines included)."""
        db = _check_identifier(name)
        if db in _RESERVED_DATABASES:
            raise ValueError(f"refusing to drop built-in database {db!r}")
        self._admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
        )

    def _admin_execute(self, statement: sql.Composed) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with psycopg.connect(
            host=HOST,
            port=self.port,
            user=SERVER_USER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            conn.execute(statement)

    # -- internals -------------------------------------------------------

    @staticmethod
    def _chown_to_server_user(path: Path) -> None:
        # initdb and postgres refuse to run as root, so the directory must
        # belong to the unprivileged server account.
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresClusterError(
                f"running as root but there is no {SERVER_USER!r} user to run the server as"
            ) from None
        os.chown(path, account.pw_uid, account.pw_gid)

    @staticmethod
    def _as_server_user(cmd: list[str]) -> list[str]:
        if not _is_root():
            return cmd
        runuser = shutil.which("runuser") or next(
            (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)),
            None,
        )
        if runuser is not None:
            return [runuser, "-u", SERVER_USER, "--", *cmd]
        return ["su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(cmd)]

    def _run(self, cmd: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        # Strip PG* variables (PGDATA, PGPORT, PGOPTIONS...) so the caller's
        # environment cannot redirect or reconfigure the throwaway server, and
        # run from the cluster directory, which the server user can always enter.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(self.environment)
        env.update(LC_ALL="C", TZ="UTC")
        return subprocess.run(
            self._as_server_user(cmd),
            cwd=self._base,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _program(self, name: str) -> str:
        if self._resolved_bin is None:
            raise PostgresClusterError("cluster is not started")
        return str(self._resolved_bin / name)

    def _initdb(self) -> None:
        result = self._run(
            [
                self._program("initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                SERVER_USER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            timeout=120,
        )
        if result.returncode != 0:
            hint = ""
            if _is_root() and "Permission denied" in result.stderr:
                hint = (
                    f"\nhint: the {SERVER_USER!r} user must be able to enter every parent of "
                    f"{self.base_dir}; pass parent_dir= or set TMPDIR to e.g. /tmp"
                )
            raise PostgresClusterError(
                f"initdb failed (exit {result.returncode}):\n{result.stderr}{result.stdout}{hint}"
            )

    def _write_config(self) -> None:
        values: dict[str, str | int] = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(self.base_dir),
            "max_connections": self.max_connections,
            "timezone": "UTC",
        }
        if not self.durable:
            values.update(_FAST_SETTINGS)
        values.update(self.settings)
        self._append_config(values)

    def _append_config(self, values: Mapping[str, str | int]) -> None:
        # Later lines win in postgresql.conf, so appending overrides initdb's values.
        lines = [f"{key} = {_conf_value(value)}" for key, value in values.items()]
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# coopnode throwaway cluster\n" + "\n".join(lines) + "\n")

    def _start_server(self) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            self._append_config({"port": port})
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            result = self._run(
                [
                    self._program("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-w",
                    "-t",
                    "30",
                    "-l",
                    str(self.log_path),
                    "start",
                ],
                timeout=60,
            )
            if result.returncode == 0:
                self._port = port
                self._running = True
                return
            log = _tail(self.log_path)
            new_log = self._log_since(log_offset)
            port_taken = any(marker in new_log for marker in _PORT_IN_USE_MARKERS)
            if not (port_taken and attempt < _START_ATTEMPTS):
                raise PostgresClusterError(
                    f"PostgreSQL failed to start (pg_ctl exit {result.returncode}).\n"
                    f"pg_ctl: {(result.stderr + result.stdout).strip()}\n"
                    f"--- last lines of the server log ({self.log_path}) ---\n{log}"
                )

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _shutdown_server(self, data_dir: Path) -> None:
        pid_file = data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        if self._resolved_bin is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._run(
                    [self._program("pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"],
                    timeout=30,
                )
        if pid_file.exists():
            # pg_ctl is gone or failed: signal the postmaster directly.
            # SIGQUIT is PostgreSQL's "immediate shutdown" signal.
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pid_file.read_text().splitlines()[0])
                os.kill(pid, signal.SIGQUIT)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    os.kill(pid, 0)
                    time.sleep(0.05)

    @staticmethod
    def _remove_tree(path: Path) -> None:
        # Backends still exiting after an immediate shutdown can briefly
        # recreate files, so retry a few times before giving up.
        for _ in range(20):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                return
            time.sleep(0.05)
        shutil.rmtree(path)
