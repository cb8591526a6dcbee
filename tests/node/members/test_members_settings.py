"""The roster settings: whether the list is public, and which partners see it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.settings import Settings, SettingsError, load_settings, write_config


def test_roster_settings_round_trip_and_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, domain="coop.example", name="Coop")
    write_config(
        dataclasses.replace(
            settings, public_roster=False, roster_partners=("beta.example", "gamma.example:8443")
        )
    )

    from_file = load_settings(tmp_path, environ={})
    from_env = load_settings(
        tmp_path,
        environ={"COOPNODE_ROSTER_PARTNERS": "Delta.Example, epsilon.example"},
    )

    assert from_file.public_roster is False
    assert from_file.roster_partners == ("beta.example", "gamma.example:8443")
    assert from_env.roster_partners == ("delta.example", "epsilon.example")
    assert Settings(data_dir=tmp_path, domain="c.example", name="C").public_roster is True


def test_a_partner_given_as_a_url_is_refused(tmp_path: Path) -> None:
    write_config(Settings(data_dir=tmp_path, domain="coop.example", name="Coop"))

    with pytest.raises(SettingsError, match="not a URL"):
        load_settings(tmp_path, environ={"COOPNODE_ROSTER_PARTNERS": "https://beta.example"})
