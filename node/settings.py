"""A node's settings: one frozen object, from the data directory's config file and
``COOPNODE_*`` environment variables (which win).

``coopnode init`` writes ``coopnode.toml`` into the data directory; ``coopnode serve``
on a directory without one writes a *local* node's file (domain ``HOST:PORT``, ids in
http, for trying coopnode on one machine).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any

from node.errors import NodeError

CONFIG_FILE = "coopnode.toml"
DEFAULT_DATA_DIR = Path("coopnode-data")
DATABASE_FILE = "coopnode.sqlite3"
DEFAULT_MEDIA_MAX_BYTES = 10 * 1024 * 1024
# The fields of a form beside its file (an offer's text with its photo, say): a form's
# body is at most media_max_bytes plus this, which is what a proxy in front must take.
FORM_FIELDS_MAX_BYTES = 64 * 1024
# An upload is held in memory while it is checked: the limit may not grow without bound.
MEDIA_MAX_BYTES_CEILING = 100 * 1024 * 1024
# Two weeks: what went wrong last week can still be read when it is noticed.
DEFAULT_RETENTION_DAYS = 14
RETENTION_DAYS_CEILING = 3650
# A proxy on the same machine: what the systemd units and nginx.conf set up.
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")

# A host name (or IPv4 address) with an optional port: what ids and handles are built on.
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=[^:]{{1,253}}(:|$)){_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?$")
_HANDLE = re.compile(r"^[a-z0-9_]{1,30}$")


class SettingsError(NodeError, ValueError):
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
    # How long finished inbox activities and deliveries, and the documents of actors the
    # co-op has no dealings with, are kept (node/services/retention.py).
    retention_days: int = DEFAULT_RETENTION_DAYS
    # The reverse proxies (addresses or networks) whose X-Forwarded-For and
    # X-Forwarded-Proto the node believes; from any other peer they are ignored, and the
    # peer's own address is the client's (login limits count by it).
    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED_PROXIES
    # A request body may take body_grace seconds at any pace (its first byte too); after
    # that it must have averaged body_min_rate bytes a second since the request began,
    # or it is cut off with 408 (a body sent a byte at a time would hold the connection).
    body_grace: float = 10.0
    body_min_rate: int = 4096
    # Co-ops (actor URLs, or handles user@host) whose shared proposals this co-op takes
    # part in at once; a shared proposal from any other followed co-op waits for the
    # admin as an invitation.
    accept_shared_from: tuple[str, ...] = ()
    # Whether the co-op's offers take questions: a thread under each offer, for members
    # and for buyers replying from their own servers.
    offer_questions: bool = False
    # /metrics for a monitoring system: "off" (404), "loopback" (clients on this machine
    # that do not come through the proxy) or "token" (a bearer token, metrics_token).
    metrics: str = "off"
    metrics_token: str = ""
    # Email (node/mail): the SMTP server the node hands its messages to. Without a host
    # the node sends no email, and says so once at start.
    smtp_host: str = ""
    smtp_port: int = 587
    # "starttls" (the upgrade is required, port 587), "tls" (TLS from the start, port
    # 465) or "none" (plain text: a relay on this machine only).
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    # The From of every message; by default the co-op's name at notifications@DOMAIN.
    mail_from: str = ""
    # At most this many notifications an hour to one address; past it, they wait for
    # the next daily digest instead of being dropped.
    mail_per_hour: int = 10
    # The reminder to members who have not voted goes this many hours before the close.
    mail_reminder_hours: int = 24
    # The daily digests go at this hour (UTC).
    mail_digest_hour: int = 7

    @property
    def mail_on(self) -> bool:
        return bool(self.smtp_host)

    @property
    def mail_sender(self) -> str:
        """The From header: ``mail_from``, or the co-op's name at notifications@host."""
        if self.mail_from:
            return self.mail_from
        host = self.domain.partition(":")[0]
        return formataddr((self.name, f"notifications@{host}"))

    @property
    def scheme(self) -> str:
        return "http" if self.local else "https"

    @property
    def largest_body(self) -> int:
        """The largest request body the node takes: a photo and its form's fields."""
        return self.media_max_bytes + FORM_FIELDS_MAX_BYTES

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
    "retention_days",
    "trusted_proxies",
    "body_grace",
    "body_min_rate",
    "accept_shared_from",
    "offer_questions",
    "metrics",
    "metrics_token",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "smtp_password",
    "mail_from",
    "mail_per_hour",
    "mail_reminder_hours",
    "mail_digest_hour",
}
_BOOLEANS = {"local", "public_collections", "public_roster", "offer_questions"}
_CHOICES = {
    "follow_policy": ("auto", "approve", "listed"),
    "federation": ("open", "allowlist"),
    "metrics": ("off", "loopback", "token"),
    "smtp_security": ("starttls", "tls", "none"),
}
# Whole numbers and their bounds (inclusive).
_WHOLE = {
    "smtp_port": (1, 65535),
    "mail_per_hour": (1, 10_000),
    "mail_reminder_hours": (1, 24 * 30),
    "mail_digest_hour": (0, 23),
}
# A bearer token a scraper sends: long enough not to be guessed.
METRICS_TOKEN_MIN = 16


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
        elif key == "retention_days":
            days = raw.strip()
            # Bounded in length too: int() refuses strings of thousands of digits.
            if not (days.isascii() and days.isdigit() and len(days) <= 6):
                raise SettingsError(
                    f"{_ENV_PREFIX}RETENTION_DAYS={raw!r}: give a whole number of days"
                )
            values[key] = int(days)
        elif key == "media_max_bytes":
            if not (raw.strip().isascii() and raw.strip().isdigit()):
                raise SettingsError(
                    f"{_ENV_PREFIX}MEDIA_MAX_BYTES={raw!r}: give a whole number of bytes"
                )
            values[key] = int(raw)
        elif key in _NUMBERS:
            values[key] = _number(key, raw)
        elif key in _WHOLE:
            text = raw.strip()
            if not (text.isascii() and text.isdigit() and len(text) <= 6):
                raise SettingsError(f"{_ENV_PREFIX}{key.upper()}={raw!r}: give a whole number")
            values[key] = int(text)
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
        retention_days=_retention_days(values.get("retention_days", DEFAULT_RETENTION_DAYS)),
        trusted_proxies=_proxies(values.get("trusted_proxies", DEFAULT_TRUSTED_PROXIES)),
        body_grace=_positive("body_grace", values.get("body_grace", 10.0)),
        body_min_rate=int(
            _positive("body_min_rate", values.get("body_min_rate", 4096), whole=True)
        ),
        accept_shared_from=_coops("accept_shared_from", values.get("accept_shared_from", ())),
        offer_questions=bool(values.get("offer_questions", False)),
        metrics=str(values.get("metrics", "off")),
        metrics_token=str(values.get("metrics_token", "")),
        smtp_host=_text("smtp_host", values.get("smtp_host", "")).strip(),
        smtp_port=_whole("smtp_port", values.get("smtp_port", 587)),
        smtp_security=str(values.get("smtp_security", "starttls")),
        smtp_username=_text("smtp_username", values.get("smtp_username", "")),
        smtp_password=_text("smtp_password", values.get("smtp_password", "")),
        mail_from=_mail_from(values.get("mail_from", "")),
        mail_per_hour=_whole("mail_per_hour", values.get("mail_per_hour", 10)),
        mail_reminder_hours=_whole("mail_reminder_hours", values.get("mail_reminder_hours", 24)),
        mail_digest_hour=_whole("mail_digest_hour", values.get("mail_digest_hour", 7)),
    )
    for key, choices in _CHOICES.items():
        if getattr(settings, key) not in choices:
            raise SettingsError(
                f"{key} = {getattr(settings, key)!r}: use one of {', '.join(choices)}"
            )
    if not settings.name:
        raise SettingsError("the co-op's name is empty")
    if settings.metrics == "token" and len(settings.metrics_token) < METRICS_TOKEN_MIN:
        raise SettingsError(
            f"metrics = 'token' needs a metrics_token of at least {METRICS_TOKEN_MIN} "
            "characters (such as the output of `openssl rand -hex 24`)"
        )
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


_COOP_HANDLE = re.compile(r"^@?[a-z0-9_.-]{1,64}@[^@/\s]{1,260}$")


def _coops(key: str, value: Any) -> tuple[str, ...]:
    """Co-ops named by actor URL or handle: a TOML array, or a comma-separated string
    (the environment). Handles are kept as ``user@host``, lower-cased."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{key} = {value!r}: give a list of co-ops (actor URLs or handles)")
    found = []
    for entry in value:
        entry = entry.strip()
        if entry.startswith(("https://", "http://")) and " " not in entry:
            found.append(entry)
        elif _COOP_HANDLE.match(entry.lower()):
            found.append(entry.lower().removeprefix("@"))
        else:
            raise SettingsError(
                f"{key}: {entry!r} is neither an actor URL nor a handle such as coop@coop.example"
            )
    return tuple(found)


_NUMBERS = {"body_grace", "body_min_rate"}


def _number(key: str, raw: str) -> float | int:
    try:
        return int(raw) if key == "body_min_rate" else float(raw)
    except ValueError as exc:
        raise SettingsError(f"{_ENV_PREFIX}{key.upper()}={raw!r}: not a number") from exc


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
        raise SettingsError(f"{key} = {value!r}: give one line of text")
    return value


def _whole(key: str, value: Any) -> int:
    low, high = _WHOLE[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"{key} = {value!r}: give a whole number from {low} to {high}")
    return value


def _mail_from(value: Any) -> str:
    """A From header: an address, with or without a name (``Co-op <news@coop.example>``)."""
    text = _text("mail_from", value).strip()
    if not text:
        return ""
    _, address = parseaddr(text)
    local, at, host = address.partition("@")
    if not (at and local and "." in host and address.isascii()):
        raise SettingsError(
            f"mail_from = {text!r}: give an address such as "
            "'Les Tisseurs <notifications@coop.example>'"
        )
    return text


def _positive(key: str, value: Any, *, whole: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (whole and not isinstance(value, int))
        or not 0 < value < 1e9
    ):
        raise SettingsError(
            f"{key} = {value!r}: give a {'whole ' if whole else ''}number between 0 and 1e9"
        )
    return float(value)


def _proxies(value: Any) -> tuple[str, ...]:
    """The trusted proxies: addresses or networks, a TOML array or a comma-separated
    string (the environment). ``*`` is refused: it would let any client choose the
    address the node counts its logins by."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"trusted_proxies = {value!r}: give a list of addresses")
    found = []
    for entry in value:
        if entry.strip() == "*":
            raise SettingsError(
                "trusted_proxies: '*' would believe X-Forwarded-For from anyone; "
                "name the reverse proxy's addresses (or their network, such as 10.0.0.0/24)"
            )
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError as exc:
            raise SettingsError(
                f"trusted_proxies: {entry!r} is not an address or a network such as 10.0.0.0/24"
            ) from exc
        single = network.num_addresses == 1
        found.append(str(network.network_address) if single else str(network))
    return tuple(found)


def _media_max_bytes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"media_max_bytes = {value!r}: give a whole number of bytes")
    if not 0 < value <= MEDIA_MAX_BYTES_CEILING:
        raise SettingsError(
            f"media_max_bytes = {value}: use between 1 and {MEDIA_MAX_BYTES_CEILING} bytes"
        )
    return value


def _retention_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"retention_days = {value!r}: give a whole number of days")
    if not 1 <= value <= RETENTION_DAYS_CEILING:
        raise SettingsError(
            f"retention_days = {value}: use between 1 and {RETENTION_DAYS_CEILING} days"
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
