"""``coopnode mail test`` and ``coopnode mail status``: an admin checks the SMTP
settings against a real server (aiosmtpd on a loopback port) and reads the outbox."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from node.cli import main
from tests.support.smtp import mail_server


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def init(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    code, output = run(
        "init", "--domain", "coop.example", "--name", "La Fourche", "--data-dir", str(data)
    )
    assert code == 0, output
    return data


def test_mail_test_sends_through_the_configured_server(tmp_path: Path) -> None:
    data = init(tmp_path)
    with mail_server() as server:
        env = {
            "COOPNODE_SMTP_HOST": "127.0.0.1",
            "COOPNODE_SMTP_PORT": str(server.port),
            "COOPNODE_SMTP_SECURITY": "none",
        }
        code, output = run(
            "mail", "test", "admin@mail.test", "--language", "fr", "--data-dir", str(data), env=env
        )
        assert code == 0, output
        assert f"Sent a test email to admin@mail.test through 127.0.0.1:{server.port}" in output
        [received] = server.received
        assert received.recipients == ["admin@mail.test"]
        assert received.subject == "E-mail de test de La Fourche"
        assert received.message["From"].addresses[0].addr_spec == "notifications@coop.example"
        port = server.port
    # The server is gone: the admin reads why.
    env = {
        "COOPNODE_SMTP_HOST": "127.0.0.1",
        "COOPNODE_SMTP_PORT": str(port),
        "COOPNODE_SMTP_SECURITY": "none",
    }
    code, output = run("mail", "test", "admin@mail.test", "--data-dir", str(data), env=env)
    assert code == 1
    assert "was not sent through 127.0.0.1" in output
    assert "cannot connect to the SMTP server" in output


def test_mail_test_says_what_is_missing(tmp_path: Path) -> None:
    data = init(tmp_path)
    code, output = run("mail", "test", "admin@mail.test", "--data-dir", str(data))
    assert code == 1
    assert "email is off: set smtp_host" in output
    code, output = run(
        "mail",
        "test",
        "not-an-address",
        "--data-dir",
        str(data),
        env={"COOPNODE_SMTP_HOST": "127.0.0.1"},
    )
    assert code == 1
    assert "is not an email address" in output
    code, output = run("mail", "status", "--data-dir", str(data))
    assert code == 0, output
    assert "Email is off" in output
    assert "Outbox: 0 pending, 0 sending, 0 sent, 0 failed" in output


def test_a_wrong_setting_is_refused_with_its_name(tmp_path: Path) -> None:
    data = init(tmp_path)
    for key, value, said in (
        ("SMTP_PORT", "99999", "smtp_port"),
        ("SMTP_SECURITY", "ssl", "smtp_security"),
        ("MAIL_FROM", "nobody", "mail_from"),
        ("MAIL_PER_HOUR", "lots", "MAIL_PER_HOUR"),
    ):
        code, output = run(
            "mail", "status", "--data-dir", str(data), env={f"COOPNODE_{key}": value}
        )
        assert code != 0
        assert said in output, (key, output)
