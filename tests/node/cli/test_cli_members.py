"""`coopnode members ...`: what the admin types and what it answers."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from node.cli import main
from node.members import store as members
from node.services import tokens
from node.settings import load_settings
from node.storage.database import Database


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.output


def init(tmp_path: Path) -> str:
    data = str(tmp_path / "data")
    code, output = run("init", "--domain", "coop.example", "--name", "Market", "--data-dir", data)
    assert code == 0, output
    return data


def test_the_admin_adds_lists_changes_and_removes_members(tmp_path: Path) -> None:
    data = init(tmp_path)

    code, output = run("members", "colleges", "workers=70", "users=30", "--data-dir", data)
    assert code == 0, output
    assert output.splitlines() == ["users\t30.00 %", "workers\t70.00 %"]
    code, output = run(
        "members", "add", "ana", "--college", "workers", "--joined", "2026-01-15",
        "--password", "--data-dir", data,
        stdin="correct horse battery\ncorrect horse battery\n",
    )  # fmt: skip
    assert code == 0, output
    assert "1\tana@coop.example\tmember\tworkers\t2026-01-15\tlocal\tconfirmed" in output
    code, output = run("members", "add", "ben", "--role", "observer", "--data-dir", data)
    assert code == 1
    assert "college: give a college" in output
    code, output = run(
        "members", "add", "ben", "--role", "observer", "--college", "users", "--data-dir", data
    )
    assert code == 0, output

    code, output = run("members", "change", "2", "--role", "member", "--data-dir", data)
    assert code == 0, output
    code, output = run("members", "remove", "1", "--data-dir", data)
    assert code == 0, output
    assert "\tleft " in output
    code, output = run("members", "list", "--data-dir", data)
    assert output.splitlines() == [
        "2\tben@coop.example\tmember\tusers\t" + output.split("\t")[4] + "\tlocal\tconfirmed"
    ]
    code, output = run("members", "list", "--all", "--data-dir", data)
    assert len(output.splitlines()) == 2

    code, output = run("members", "token", "2", "--data-dir", data)
    assert code == 0, output
    token = output.strip()
    db = Database(load_settings(Path(data)).database_url)
    try:
        info = db.read_sync(lambda c: tokens.find_token(c, token))
        ana = db.read_sync(lambda c: members.login_candidate(c, "ana"))
    finally:
        db.close()
    assert info is not None
    assert info.role == "member"
    assert ana is None  # she left: no more logins


def test_refusals_are_plain_errors(tmp_path: Path) -> None:
    data = init(tmp_path)

    code, output = run("members", "colleges", "workers=60", "users=30", "--data-dir", data)
    assert code == 1
    assert "90.00 %" in output
    code, output = run("members", "colleges", "workers", "--data-dir", data)
    assert code == 1
    code, output = run("members", "remove", "7", "--data-dir", data)
    assert code == 1
    assert "no member 7" in output
    code, output = run("members", "add", "ana", "--role", "boss", "--data-dir", data)
    assert code == 1
    assert "role" in output
