"""Where the audit's documents come from (node.governance.audit.fetch): an unreachable
proposal is an error, any HTTP client will do, and loopback is refused unless allowed."""

from __future__ import annotations

import asyncio

import httpx
from click.testing import CliRunner

from node.cli.audit import audit_command
from node.governance.audit.report import AuditReport
from node.governance.audit.run import audit
from tests.node.governance.audit.host import DocumentServer, cli, honest


def test_an_unreachable_proposal_is_an_error(server: DocumentServer) -> None:
    run = cli(f"{server.base}/proposals/missing")

    assert run.exit_code == 2
    assert "404" in run.stderr


def test_any_http_client_will_do(server: DocumentServer) -> None:
    """Without the address guard (a client of the caller's own), actor documents are
    fetched through fetch_json itself rather than aiohttp."""
    scenario = honest(server)
    url = scenario.publish(server)

    async def run() -> AuditReport:
        async with httpx.AsyncClient() as http:
            return await audit(url, http=http, allow_http=True)

    report = asyncio.run(run())

    assert report.ok, report.discrepancies
    assert report.verified == 12


def test_loopback_is_refused_without_allow_http(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)

    run = CliRunner().invoke(audit_command, [url])

    assert run.exit_code == 2
    assert "only https URLs are fetched" in run.stderr
