"""Settings: one frozen object from the config file, the environment and overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.settings import Settings, SettingsError, load_settings, write_config


def write(tmp_path: Path, **values: object) -> Path:
    settings = Settings(data_dir=tmp_path, domain="coop.example", name="Coop")
    write_config(dataclasses.replace(settings, **values))  # type: ignore[arg-type]
    return tmp_path


def test_the_config_file_round_trips(tmp_path: Path) -> None:
    write(tmp_path, name='Marché "équitable"', handle="marche", summary="line\nline")

    settings = load_settings(tmp_path, environ={})

    assert settings.name == 'Marché "équitable"'
    assert settings.handle == "marche"
    assert settings.summary == "line\nline"
    assert settings.database_url == f"sqlite:///{(tmp_path / 'coopnode.sqlite3').resolve()}"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.name = "x"  # type: ignore[misc]


def test_environment_variables_override_the_file(tmp_path: Path) -> None:
    write(tmp_path)

    settings = load_settings(
        tmp_path,
        environ={
            "COOPNODE_NAME": "From env",
            "COOPNODE_DATABASE_URL": "postgresql://u@db/coop",
            "COOPNODE_LOCAL": "true",
            "COOPNODE_HTTP_TIMEOUT": "3.5",
        },
    )

    assert settings.name == "From env"
    assert settings.database_url == "postgresql://u@db/coop"
    assert settings.local
    assert settings.base_url == "http://coop.example"
    assert settings.http_timeout == 3.5


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"COOPNODE_LOCAL": "maybe"}, "LOCAL"),
        ({"COOPNODE_HTTP_TIMEOUT": "soon"}, "HTTP_TIMEOUT"),
        ({"COOPNODE_DOMAIN": "http://coop.example"}, "not a URL"),
        ({"COOPNODE_DOMAIN": "coop.example:70000"}, "port"),
        ({"COOPNODE_HANDLE": "Coop!"}, "handle"),
        ({"COOPNODE_NAME": "  "}, "name"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    write(tmp_path)

    with pytest.raises(SettingsError, match=message):
        load_settings(tmp_path, environ=environ)


def test_an_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path)
    with (tmp_path / "coopnode.toml").open("a") as fh:
        fh.write('colour = "red"\n')

    with pytest.raises(SettingsError, match="colour"):
        load_settings(tmp_path, environ={})


def test_a_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "nothing", environ={})
