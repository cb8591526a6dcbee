"""The retention setting: a whole number of days, from the file or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.settings import (
    DEFAULT_RETENTION_DAYS,
    Settings,
    SettingsError,
    load_settings,
    write_config,
)


def write(tmp_path: Path) -> Path:
    write_config(Settings(data_dir=tmp_path, domain="coop.example", name="Coop"))
    return tmp_path


def test_the_default_is_two_weeks_and_is_written_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path), environ={})

    assert settings.retention_days == DEFAULT_RETENTION_DAYS == 14
    assert "retention_days = 14" in (tmp_path / "coopnode.toml").read_text()


def test_the_file_and_the_environment_set_it(tmp_path: Path) -> None:
    write(tmp_path)
    path = tmp_path / "coopnode.toml"
    path.write_text(path.read_text().replace("retention_days = 14", "retention_days = 30"))

    assert load_settings(tmp_path, environ={}).retention_days == 30
    environ = {"COOPNODE_RETENTION_DAYS": " 90 "}
    assert load_settings(tmp_path, environ=environ).retention_days == 90


@pytest.mark.parametrize("raw", ["0", "-1", "7.5", "a week", "", "٣", "9" * 5000, "3651"])
def test_a_bad_number_of_days_in_the_environment_is_refused(tmp_path: Path, raw: str) -> None:
    write(tmp_path)

    with pytest.raises(SettingsError, match=r"(?i)retention_days"):
        load_settings(tmp_path, environ={"COOPNODE_RETENTION_DAYS": raw})


@pytest.mark.parametrize("value", ["0", "true", '"14"', "14.0", "100000"])
def test_a_bad_number_of_days_in_the_file_is_refused(tmp_path: Path, value: str) -> None:
    write(tmp_path)
    path = tmp_path / "coopnode.toml"
    path.write_text(path.read_text().replace("retention_days = 14", f"retention_days = {value}"))

    with pytest.raises(SettingsError, match="retention_days"):
        load_settings(tmp_path, environ={})
