"""The settings that say how far the node trusts a connection: which proxies may name
the client, and how slowly a request body may come."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.settings import Settings, SettingsError, load_settings, write_config


def node_dir(tmp_path: Path, extra: str = "") -> Path:
    config = 'domain = "coop.example"\nname = "Coop"\n' + extra
    (tmp_path / "coopnode.toml").write_text(config, encoding="utf-8")
    return tmp_path


def test_by_default_only_a_proxy_on_the_same_machine_is_trusted(tmp_path: Path) -> None:
    settings = load_settings(node_dir(tmp_path), environ={})

    assert settings.trusted_proxies == ("127.0.0.1", "::1")
    assert (settings.body_grace, settings.body_min_rate) == (10.0, 4096)


def test_proxies_come_from_the_environment_as_addresses_or_networks(tmp_path: Path) -> None:
    environ = {"COOPNODE_TRUSTED_PROXIES": " 172.28.5.1, 10.1.2.3/24 ,2001:DB8::/32"}

    settings = load_settings(node_dir(tmp_path), environ=environ)

    assert settings.trusted_proxies == ("172.28.5.1", "10.1.2.0/24", "2001:db8::/32")
    assert load_settings(tmp_path, environ={"COOPNODE_TRUSTED_PROXIES": ""}).trusted_proxies == ()


@pytest.mark.parametrize("value", ["*", "127.0.0.1,*", "proxy.example", "10.0.0.0/33", "\ud800"])
def test_a_proxy_that_is_not_an_address_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="trusted_proxies"):
        load_settings(node_dir(tmp_path), environ={"COOPNODE_TRUSTED_PROXIES": value})


def test_the_body_pace_is_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    node_dir(tmp_path, "body_grace = 3\nbody_min_rate = 512\n")
    environ = {"COOPNODE_BODY_GRACE": "2.5", "COOPNODE_BODY_MIN_RATE": "1024"}

    from_file = load_settings(tmp_path, environ={})
    from_environ = load_settings(tmp_path, environ=environ)

    assert (from_file.body_grace, from_file.body_min_rate) == (3.0, 512)
    assert (from_environ.body_grace, from_environ.body_min_rate) == (2.5, 1024)


def test_the_written_config_file_reads_back_the_same(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        domain="coop.example",
        name="Coop",
        trusted_proxies=("172.28.5.1", "10.0.0.0/24"),
        body_grace=4.0,
        body_min_rate=2048,
    )
    write_config(settings)

    read = load_settings(tmp_path, environ={})

    assert read.trusted_proxies == settings.trusted_proxies
    assert (read.body_grace, read.body_min_rate) == (4.0, 2048)


@pytest.mark.parametrize(
    "extra",
    [
        "body_grace = 0\n",
        "body_grace = -1\n",
        "body_grace = true\n",
        'body_grace = "10"\n',
        "body_grace = inf\n",
        "body_grace = nan\n",
        "body_min_rate = 0.5\n",
        "body_min_rate = 10000000000000\n",
        'trusted_proxies = "*"\n',
        "trusted_proxies = [1]\n",
    ],
)
def test_a_wrong_pace_or_proxy_in_the_file_is_refused(tmp_path: Path, extra: str) -> None:
    with pytest.raises(SettingsError):
        load_settings(node_dir(tmp_path, extra), environ={})


@pytest.mark.parametrize("name", ["COOPNODE_BODY_GRACE", "COOPNODE_BODY_MIN_RATE"])
def test_a_pace_in_the_environment_must_be_a_number(tmp_path: Path, name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(node_dir(tmp_path), environ={name: "fast"})
