"""The shipped deployment files trust only the reverse proxy's address: neither the
Compose file nor the `docker run` example may believe X-Forwarded-For from anyone."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from click.testing import CliRunner

from node.cli import main
from node.settings import load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def trusted_by(tmp_path: Path, value: str) -> tuple[str, ...]:
    """The proxies a node trusts with ``COOPNODE_TRUSTED_PROXIES=value``."""
    (tmp_path / "coopnode.toml").write_text('domain = "coop.example"\nname = "Coop"\n')
    return load_settings(tmp_path, environ={"COOPNODE_TRUSTED_PROXIES": value}).trusted_proxies


def test_the_compose_file_trusts_only_the_gateway_of_its_own_network(tmp_path: Path) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    settings = [line.split("#")[0] for line in text.splitlines()]

    assert not any("FORWARDED_ALLOW_IPS" in line for line in settings)
    (value,) = re.findall(r'^\s+COOPNODE_TRUSTED_PROXIES:\s*"([^"]*)"', text, re.MULTILINE)
    (subnet,) = re.findall(r"^\s+- subnet:\s*(\S+)", text, re.MULTILINE)
    (gateway,) = re.findall(r"^\s+gateway:\s*(\S+)", text, re.MULTILINE)
    trusted = trusted_by(tmp_path, value)
    assert trusted == (gateway,)  # one address, not a network anyone could be in
    assert ipaddress.ip_address(gateway) in ipaddress.ip_network(subnet)


def test_the_docker_run_example_names_the_bridge_gateway(tmp_path: Path) -> None:
    readme = (DEPLOY / "README.md").read_text()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    examples = [
        command
        for text in (readme, dockerfile.replace("\n#", "\n"))
        for command in re.findall(r"docker run -d(?:[^\n]*\\\n)*[^\n]*", text)
    ]

    assert len(examples) == 2
    for command in examples:
        assert "FORWARDED_ALLOW_IPS" not in command
        assert "*" not in command
        (value,) = re.findall(r"-e COOPNODE_TRUSTED_PROXIES=(\S+)", command)
        assert trusted_by(tmp_path, value.strip("'\"")) == ("172.17.0.1",)


def test_serve_refuses_to_start_while_uvicorns_old_variable_is_set(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["serve", "--data-dir", str(tmp_path / "node"), "--port", "8731"],
        env={"FORWARDED_ALLOW_IPS": "*"},
    )

    assert result.exit_code != 0
    assert "COOPNODE_TRUSTED_PROXIES" in result.output
    assert not (tmp_path / "node").exists()  # refused before anything was made
