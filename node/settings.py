"""A node's settings: one frozen object, from the data directory's config file and
``COOPNODE_*`` environment variables (which win).

``coopnode init`` writes ``coopnode.toml`` into the data directory; ``coopnode serve``
on a directory without one writes a *local* node's file (domain ``HOST:PORT``, ids in
http, for trying coopnode on one machine).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

CONFIG_FILE = "coopnode.toml"
DEFAULT_DATA_DIR = Path("coopnode-data")
DATABASE_FILE = "coopnode.sqlite3"
DEFAULT_MEDIA_MAX_BYTES = 10 * 1024 * 1024
# An upload is held in memory while it is checked: the limit may not grow without bound.
MEDIA_MAX_BYTES_CEILING = 100 * 1024 * 1024

# A host name (or IPv4 address) with an optional port: what ids and handles are built on.
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=[^:]{{1,253}}(:|$)){_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?$")
_HANDLE = re.compile(r"^[a-z0-9_]{1,30}$")


class SettingsError(ValueError):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    domain: str
    name: str
    handle: str = "coop"
    summary: str = ""
    # A local node uses http ids and may talk to loopback addresses: for one machine only.
    local: bool = False
    database_url: str = ""
    # Where delivery and fetches identify themselves and how long they may take.
    http_timeout: float = 10.0
    # Incoming follows: "auto" accepts them, "approve" holds them for the admin, "listed"
    # accepts those from allowed domains (`coopnode domains allow`) and refuses the rest.
    follow_policy: str = "auto"
    # "open" federates with anyone not blocked; "allowlist" only with allowed domains.
    federation: str = "open"
    # Whether the followers and following collections list their members publicly
    # (their sizes are always public).
    public_collections: bool = True
    # Whether the members collection lists the co-op's members (its size is always public).
    public_roster: bool = True
    # The domains of partner nodes that see the members list when it is not public:
    # their signed requests are answered with it.
    roster_partners: tuple[str, ...] = ()
    # The largest image a member may upload, in bytes (refused with 413 above it).
    media_max_bytes: int = DEFAULT_MEDIA_MAX_BYTES

    @property
    def scheme(self) -> str:
        return "http" if self.local else "https"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.domain}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE


_ENV_PREFIX = "COOPNODE_"
_FILE_KEYS = {
    "domain",
    "name",
    "handle",
    "summary",
    "local",
    "database_url",
    "http_timeout",
    "follow_policy",
    "federation",
    "public_collections",
    "public_roster",
    "roster_partners",
    "media_max_bytes",
}
_BOOLEANS = {"local", "public_collections", "public_roster"}
_CHOICES = {"follow_policy": ("auto", "approve", "listed"), "federation": ("open", "allowlist")}


def validate_domain(domain: str) -> str:
    domain = domain.strip().lower()
    if "://" in domain or "/" in domain:
        raise SettingsError(f"domain {domain!r}: give a host name such as coop.example, not a URL")
    if not _DOMAIN.match(domain):
        raise SettingsError(f"domain {domain!r} is not a valid host name[:port]")
    _, _, port = domain.partition(":")
    if port and not 0 < int(port) < 65536:
        raise SettingsError(f"domain {domain!r}: the port must be between 1 and 65535")
    return domain


def validate_handle(handle: str) -> str:
    if not _HANDLE.match(handle):
        raise SettingsError(
            f"handle {handle!r}: use 1 to 30 lower-case letters, digits or underscores"
        )
    return handle


def load_settings(
    data_dir: Path, *, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Settings for ``data_dir``: its config file, then the environment, then overrides.

    Raises :class:`FileNotFoundError` when the data directory has no config file yet.
    """
    environ = os.environ if environ is None else environ
    data_dir = Path(data_dir)
    path = data_dir / CONFIG_FILE
    with path.open("rb") as fh:
        try:
            values: dict[str, Any] = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from exc
    unknown = set(values) - _FILE_KEYS
    if unknown:
        raise SettingsError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    values.update(_from_environ(environ))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _build(data_dir, values)


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in _FILE_KEYS:
        raw = environ.get(_ENV_PREFIX + key.upper())
        if raw is None:
            continue
        if key in _BOOLEANS:
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise SettingsError(f"{_ENV_PREFIX}{key.upper()}={raw!r}: use true or false")
            values[key] = raw.lower() in {"1", "true", "yes"}
        elif key == "http_timeout":
            try:
                values[key] = float(raw)
            except ValueError as exc:
                raise SettingsError(f"{_ENV_PREFIX}HTTP_TIMEOUT={raw!r}: not a number") from exc
        elif key == "media_max_bytes":
            if not raw.strip().isdigit():
                raise SettingsError(
                    f"{_ENV_PREFIX}MEDIA_MAX_BYTES={raw!r}: give a whole number of bytes"
                )
            values[key] = int(raw)
        else:
            values[key] = raw
    return values


def _build(data_dir: Path, values: Mapping[str, Any]) -> Settings:
    if "domain" not in values or "name" not in values:
        raise SettingsError("the config file needs a domain and a name (see `coopnode init`)")
    settings = Settings(
        data_dir=data_dir,
        domain=validate_domain(str(values["domain"])),
        name=str(values["name"]).strip(),
        handle=validate_handle(str(values.get("handle", "coop"))),
        summary=str(values.get("summary", "")),
        local=bool(values.get("local", False)),
        database_url=str(values.get("database_url") or ""),
        http_timeout=float(values.get("http_timeout", 10.0)),
        follow_policy=str(values.get("follow_policy", "auto")),
        federation=str(values.get("federation", "open")),
        public_collections=bool(values.get("public_collections", True)),
        public_roster=bool(values.get("public_roster", True)),
        roster_partners=_domains("roster_partners", values.get("roster_partners", ())),
        media_max_bytes=_media_max_bytes(values.get("media_max_bytes", DEFAULT_MEDIA_MAX_BYTES)),
    )
    for key, choices in _CHOICES.items():
        if getattr(settings, key) not in choices:
            raise SettingsError(
                f"{key} = {getattr(settings, key)!r}: use one of {', '.join(choices)}"
            )
    if not settings.name:
        raise SettingsError("the co-op's name is empty")
    if not settings.database_url:
        settings = replace(
            settings, database_url=f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}"
        )
    return settings


def _domains(key: str, value: Any) -> tuple[str, ...]:
    """A list of domains: a TOML array, or a comma-separated string (the environment)."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{key} = {value!r}: give a list of domains")
    return tuple(validate_domain(v) for v in value)


def _media_max_bytes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"media_max_bytes = {value!r}: give a whole number of bytes")
    if not 0 < value <= MEDIA_MAX_BYTES_CEILING:
        raise SettingsError(
            f"media_max_bytes = {value}: use between 1 and {MEDIA_MAX_BYTES_CEILING} bytes"
        )
    return value


def write_config(settings: Settings) -> Path:
    """Write the settings that belong in the file (not the derived database path)."""
    # The data directory holds the database, and with it the co-op's private keys.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = ["# coopnode settings; COOPNODE_* environment variables override them."]
    default_db = f"sqlite:///{(settings.data_dir / DATABASE_FILE).resolve()}"
    for f in fields(settings):
        if f.name not in _FILE_KEYS:
            continue
        value = getattr(settings, f.name)
        if f.name == "database_url" and value in ("", default_db):
            continue
        # JSON strings, booleans and numbers are valid TOML values.
        lines.append(f"{f.name} = {json.dumps(value)}")
    path = settings.config_path
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def database_url_for(data_dir: Path, environ: Mapping[str, str] | None = None) -> str:
    """The database of a data directory, before its settings exist (for a new node)."""
    environ = os.environ if environ is None else environ
    return environ.get(_ENV_PREFIX + "DATABASE_URL") or (
        f"sqlite:///{(Path(data_dir) / DATABASE_FILE).resolve()}"
    )
