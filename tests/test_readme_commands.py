"""The README's command table names every command and every option that ``--help``
shows, so that an admin reading it learns of each one; and the data directories the
README has people create are ignored by git."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click

from node.cli import main
from node.offers.model import CLAIMS, DELIVERY_OPTIONS, PAYMENT_OPTIONS, Kind
from node.offers.validation import FIELDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Every command takes it, and the paragraph under the table says so once.
SAID_ONCE = {"--data-dir", "--help"}


def command_rows() -> list[str]:
    table = README.split("### Commands", 1)[1].split("\n### ", 1)[0]
    return [line for line in table.splitlines() if line.startswith("| `coopnode ")]


def commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def long_options(command: click.Command) -> list[list[str]]:
    """Each option's long names (a flag pair such as --workers/--no-workers as one)."""
    return [
        [name for name in (*param.opts, *param.secondary_opts) if name.startswith("--")]
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden
    ]


def test_every_command_and_option_is_in_the_readme_table() -> None:
    rows = command_rows()
    missing: list[str] = []
    for path, command in commands(main):
        # A command's row: the one (or ones) that begin with its top-level name.
        text = " ".join(row for row in rows if re.match(rf"\| `coopnode {path[0]}\b", row))
        if not text:
            missing.append(" ".join(path))
            continue
        if len(path) > 1 and not re.search(rf"\b{re.escape(path[-1])}\b", text):
            missing.append(" ".join(path))
        for names in long_options(command):
            if SAID_ONCE.intersection(names):
                continue
            if not any(re.search(rf"{re.escape(name)}\b", text) for name in names):
                missing.append(f"{' '.join(path)} {'/'.join(names)}")

    assert not missing, "not in the README's command table: " + "; ".join(missing)


def test_the_data_directories_the_readme_creates_are_ignored_by_git() -> None:
    suggested = set(re.findall(r"--data-dir \./([\w-]+)", README))
    assert "other" in suggested
    paths = ["coopnode-data/coopnode.toml"] + [f"{name}/coopnode.toml" for name in suggested]

    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()

    assert sorted(ignored) == sorted(paths)


def test_the_try_it_lines_set_the_token_they_use() -> None:
    try_it = README.split("Try it", 1)[1].split("```", 2)[1]

    assert re.search(r"^TOKEN=", try_it, re.MULTILINE)
    assert try_it.index("TOKEN=") < try_it.index("$TOKEN")


def test_the_offer_fields_and_their_values_are_all_described() -> None:
    offers = README.split("### Offers and the catalogue", 1)[1].split("\n### ", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", offers)) | set(re.findall(r'"([a-z_]+)":', offers))

    assert sorted(FIELDS - named) == []
    for values in (DELIVERY_OPTIONS, PAYMENT_OPTIONS, CLAIMS, tuple(Kind)):
        assert sorted(set(values) - named) == []
