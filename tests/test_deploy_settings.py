"""The files in ``deploy/`` agree with the node's settings and its command line.

Each file is read as shipped and checked against what the code says: the proxies'
body limits against the largest body the node takes (a photo of up to the default
``media_max_bytes`` plus the offer form's other fields), the ``serve`` flags of every
unit and container against the options ``serve`` really has (parsed by its own option
parser), the ports against ``serve``'s default, and the forwarding headers the node
relies on. A change on one side without the other fails here."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest

from node.cli.server import serve
from node.settings import DEFAULT_MEDIA_MAX_BYTES
from node.web.ui.offer_form import MAX_FIELD_BYTES

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"

# The largest request body the node accepts: the offer form with its photo.
NODE_BODY_LIMIT = DEFAULT_MEDIA_MAX_BYTES + MAX_FIELD_BYTES
# How far above it a proxy may go: a proxy that takes far more than the node answers
# only buffers bodies the node will refuse.
SLACK = 1024 * 1024

NGINX_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
CADDY_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def uncommented(text: str) -> str:
    """The text without its comment lines (the examples in comments are not settings)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def nginx_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * NGINX_UNITS[unit.lower()]


def caddy_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", value).groups()  # type: ignore[union-attr]
    return int(number) * CADDY_UNITS[unit.lower() or "b"]


def serve_params(args: list[str]) -> dict[str, Any]:
    """The options ``coopnode serve`` would run with, given these arguments: parsed by
    the command's own parser, so an unknown or misspelt flag fails here too."""
    assert args[0] == "serve", args
    with serve.make_context("serve", list(args[1:])) as ctx:
        return dict(ctx.params)


def coopnode_args(command_line: str) -> list[str]:
    """A command line's arguments after the ``coopnode`` program."""
    words = shlex.split(command_line)
    (at,) = [i for i, word in enumerate(words) if word.rsplit("/", 1)[-1] == "coopnode"]
    return words[at + 1 :]


def exec_start(unit: str, instance: str = "8001") -> list[str]:
    """The unit's ``coopnode`` arguments, for an instance name (``%i``) of its own."""
    (line,) = re.findall(r"^ExecStart=(.+)$", (DEPLOY / unit).read_text(), re.MULTILINE)
    return coopnode_args(line.replace("%i", instance))


def compose_service(name: str) -> str:
    """The lines of one service of compose.yaml (under ``services:``)."""
    text = uncommented((DEPLOY / "compose.yaml").read_text())
    services = text.split("\nservices:\n", 1)[1].split("\n\n" + "networks:", 1)[0]
    blocks = re.split(r"^  (?=[a-z])", services, flags=re.MULTILINE)
    (block,) = [b for b in blocks if b.startswith(f"{name}:")]
    return block


def compose_command(name: str) -> list[str]:
    (raw,) = re.findall(r"^\s+command:\s*(\[.*\])\s*$", compose_service(name), re.MULTILINE)
    words: list[str] = json.loads(raw)
    assert words[0] == "coopnode"
    return words[1:]


def default_port() -> int:
    return int(serve_params(["serve"])["port"])


# --- body limits ---------------------------------------------------------------------


def test_nginx_takes_the_largest_body_the_node_takes() -> None:
    text = uncommented((DEPLOY / "nginx.conf").read_text())
    (value,) = re.findall(r"^\s*client_max_body_size\s+(\S+);", text, re.MULTILINE)

    assert NODE_BODY_LIMIT <= nginx_size(value) <= NODE_BODY_LIMIT + SLACK


def test_caddy_takes_the_largest_body_the_node_takes() -> None:
    text = uncommented((DEPLOY / "Caddyfile").read_text())
    (value,) = re.findall(r"^\s*max_size\s+(\S+)\s*$", text, re.MULTILINE)

    assert NODE_BODY_LIMIT <= caddy_size(value) <= NODE_BODY_LIMIT + SLACK


def test_the_sizes_are_read_as_the_proxies_read_them() -> None:
    assert caddy_size("10MB") == 10_000_000 < DEFAULT_MEDIA_MAX_BYTES
    assert caddy_size("10MiB") == nginx_size("10m") == DEFAULT_MEDIA_MAX_BYTES
    assert nginx_size("10m") < NODE_BODY_LIMIT  # no room for the form's other fields


@pytest.mark.parametrize("name", ["nginx.conf", "Caddyfile", "README.md"])
def test_the_stated_form_overhead_is_the_nodes(name: str) -> None:
    assert MAX_FIELD_BYTES == 64 * 1024
    assert "64 KiB" in (DEPLOY / name).read_text()


# --- workers ---------------------------------------------------------------------------


def test_the_single_process_unit_runs_the_workers_itself() -> None:
    """coopnode.service is the SQLite setup: one process does everything."""
    params = serve_params(exec_start("coopnode.service"))

    assert params["workers"] is True
    assert "also runs the background workers" in (DEPLOY / "coopnode.service").read_text()


def test_the_web_units_leave_the_work_to_the_worker_units() -> None:
    params = serve_params(exec_start("coopnode-web@.service"))

    assert params["workers"] is False
    assert exec_start("coopnode-worker@.service") == ["worker"]


def test_compose_runs_the_workers_in_the_worker_containers_only() -> None:
    database = re.findall(
        r'COOPNODE_DATABASE_URL:\s*"([^"]*)"', (DEPLOY / "compose.yaml").read_text()
    )
    assert [url.split(":")[0] for url in database] == ["postgresql"]  # --no-workers needs it

    assert serve_params(compose_command("web"))["workers"] is False
    assert compose_command("worker") == ["worker"]
    assert re.search(r"^\s+replicas:\s*[1-9]", compose_service("worker"), re.MULTILINE)


def test_compose_gives_postgresql_the_memory_env_example_names() -> None:
    """The db container's shared_buffers come from the variable deploy/.env sets, with
    the same default as the example, in a form PostgreSQL reads."""
    (raw,) = re.findall(r"^\s+command:\s*(\[.*\])\s*$", compose_service("db"), re.MULTILINE)
    words = json.loads(raw)
    assert words[:2] == ["postgres", "-c"]
    setting = re.fullmatch(r"shared_buffers=\$\{POSTGRES_SHARED_BUFFERS:-(\d+[kMG]B)\}", words[2])
    assert setting is not None
    example = re.findall(
        r"^POSTGRES_SHARED_BUFFERS=(.*)$", (DEPLOY / "env.example").read_text(), re.MULTILINE
    )
    assert example == [setting.group(1)]


def test_the_guide_compose_and_the_benchmark_set_postgresql_s_allocator_alike() -> None:
    """The allocator's settings deploy/README.md gives for Debian's environment file are
    those the Compose file gives the db container and the catalogue's benchmark its
    server: the figures the guide quotes are of these."""
    readme = re.findall(r"^\s+(MALLOC_\w+_) = (\d+)$", (DEPLOY / "README.md").read_text(), re.M)
    compose = re.findall(r'^\s+(MALLOC_\w+_): "(\d+)"$', compose_service("db"), re.M)
    bench = (DEPLOY.parent / "bench" / "catalogue.py").read_text()
    measured = re.findall(r'^\s+"(MALLOC_\w+_)": "(\d+)",$', bench, re.M)
    assert len(readme) == 3
    assert dict(readme) == dict(compose) == dict(measured)


def test_the_image_alone_runs_one_process_with_its_workers() -> None:
    """`docker run` of the image is the SQLite setup: no worker container beside it."""
    text = (DEPLOY / "Dockerfile").read_text()
    (raw,) = re.findall(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    words = json.loads(raw)

    assert words[0] == "coopnode"
    assert serve_params(words[1:])["workers"] is True


# --- ports -----------------------------------------------------------------------------


def test_the_proxies_reach_the_port_the_single_process_serves() -> None:
    port = serve_params(exec_start("coopnode.service"))["port"]
    nginx = uncommented((DEPLOY / "nginx.conf").read_text())
    caddy = uncommented((DEPLOY / "Caddyfile").read_text())

    assert port == default_port()
    assert re.findall(r"^\s*server\s+(\S+);", nginx, re.MULTILINE) == [f"127.0.0.1:{port}"]
    assert re.findall(r"^\s*reverse_proxy\s+(\S+)", caddy, re.MULTILINE) == [f"127.0.0.1:{port}"]


def test_the_proxies_examples_list_the_web_units_ports() -> None:
    unit = (DEPLOY / "coopnode-web@.service").read_text()
    unit_ports = re.findall(r"coopnode-web@(\d+)", unit)
    nginx = re.findall(r"#\s*server 127\.0\.0\.1:(\d+);", (DEPLOY / "nginx.conf").read_text())
    (caddy_line,) = re.findall(r"#\s*reverse_proxy (.+?) \{", (DEPLOY / "Caddyfile").read_text())

    assert unit_ports
    assert nginx == unit_ports
    assert re.findall(r"127\.0\.0\.1:(\d+)", caddy_line) == unit_ports
    for port in unit_ports:
        assert serve_params(exec_start("coopnode-web@.service", port))["port"] == int(port)


def test_compose_and_the_image_publish_the_port_they_serve() -> None:
    port = int(serve_params(compose_command("web"))["port"])
    (published,) = re.findall(r'^\s+- "([^"]+)"', compose_service("web"), re.MULTILINE)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    (cmd,) = re.findall(r"^CMD\s+(\[.*\])\s*$", dockerfile, re.MULTILINE)

    assert published == f"127.0.0.1:${{COOPNODE_HTTP_PORT:-{default_port()}}}:{port}"
    assert f"COOPNODE_HTTP_PORT={default_port()}" in (DEPLOY / "env.example").read_text()
    assert serve_params(json.loads(cmd)[1:])["port"] == port
    assert re.search(rf"^EXPOSE {port}$", dockerfile, re.MULTILINE)
    assert f"http://127.0.0.1:{port}/" in dockerfile  # the health check


@pytest.mark.parametrize("unit", ["coopnode.service", "coopnode-web@.service"])
def test_the_units_listen_on_loopback_behind_the_proxy(unit: str) -> None:
    assert serve_params(exec_start(unit))["host"] == "127.0.0.1"


# --- forwarding headers ----------------------------------------------------------------


def test_nginx_keeps_the_host_and_sets_the_scheme() -> None:
    text = uncommented((DEPLOY / "nginx.conf").read_text())
    headers = dict(re.findall(r"^\s*proxy_set_header\s+(\S+)\s+(.+?);", text, re.MULTILINE))

    assert headers["Host"] == "$host"
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert headers["X-Forwarded-For"] == "$proxy_add_x_forwarded_for"


def test_caddy_keeps_its_defaults_for_the_host_and_the_scheme() -> None:
    """Caddy's reverse_proxy passes Host unchanged and sets X-Forwarded-Proto unless
    told otherwise: nothing in the file may tell it otherwise."""
    text = uncommented((DEPLOY / "Caddyfile").read_text())

    assert not re.search(r"header_up\s+[-+]?(Host|X-Forwarded-Proto)\b", text, re.IGNORECASE)
    assert "trusted_proxies" not in text  # Caddy would then pass a client's own headers


def test_every_serve_command_in_deploy_parses() -> None:
    """No unit, container or example names an option `serve` does not have."""
    for name in ("coopnode.service", "coopnode-web@.service"):
        serve_params(exec_start(name))
    with pytest.raises(click.NoSuchOption):
        serve_params(["serve", "--no-such-flag"])
