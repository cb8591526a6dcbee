"""``coopnode audit URL``: anyone's recount of a closed proposal on any coopnode.

It needs no node of its own: no settings, no database, only the network. Its HTTP
client is the guarded one every fetch of a node uses (no private or reserved addresses;
loopback only with ``--allow-http``, which is for a local node and for tests), so that
auditing a hostile host's proposal cannot be turned against the auditor's network.

Exit status: 0 when the result verifies, 1 when it does not, 2 when the proposal could
not be reached or read (the reason on stderr), so scripts can tell "wrong" from "unknown".

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it.
"""

from __future__ import annotations

import asyncio
import sys

import click
import httpx

from federation.netguard import make_guarded_transport
from node import __version__
from node.errors import problem
from node.governance.audit.fetch import ACTOR_CONCURRENCY
from node.governance.audit.fields import AuditError
from node.governance.audit.render import render
from node.governance.audit.report import AuditReport
from node.governance.audit.run import audit

EXIT_VERIFIED = 0
EXIT_DOES_NOT_VERIFY = 1
EXIT_ERROR = 2


def make_audit_client(*, allow_loopback: bool) -> httpx.AsyncClient:
    """The guarded client of :func:`node.runtime.make_http_client`, without a node's
    settings, and with enough connections for the actor documents fetched at once."""
    return httpx.AsyncClient(
        transport=make_guarded_transport(
            allow_loopback=allow_loopback,
            limits=httpx.Limits(
                max_connections=2 * ACTOR_CONCURRENCY,
                max_keepalive_connections=2 * ACTOR_CONCURRENCY,
            ),
        ),
        timeout=httpx.Timeout(10.0, connect=5.0),
        headers={"User-Agent": f"coopnode/{__version__} (audit)"},
        follow_redirects=False,
    )


async def run_audit(url: str, *, allow_http: bool) -> AuditReport:
    async with make_audit_client(allow_loopback=allow_http) as http:
        return await audit(url, http=http, allow_http=allow_http)


def audit_blocking(url: str, *, allow_http: bool) -> AuditReport:
    """:func:`run_audit` on a loop of its own: uvloop where it is built, which fetches
    the thousands of actor documents of a large vote about a quarter faster."""
    try:
        import uvloop
    except ImportError:  # not built for this platform
        return asyncio.run(run_audit(url, allow_http=allow_http))
    return uvloop.run(run_audit(url, allow_http=allow_http))


@click.command("audit")
@click.argument("url")
@click.option(
    "--allow-http",
    is_flag=True,
    help="Fetch http URLs and loopback addresses too (a local node, tests).",
)
def audit_command(url: str, allow_http: bool) -> None:
    """Recount the closed proposal at URL from its published ballots and electorate
    (or, counted by subtotals, from each co-op's signed subtotal).

    Verifies each ballot's (or subtotal's) proof against its author's own key, recomputes the result
    with the same rules as the host, and prints published and recomputed figures side
    by side. Exits 0 when everything matches, 1 when it does not, 2 when the proposal
    cannot be reached or read.
    """
    try:
        report = audit_blocking(url, allow_http=allow_http)
    except AuditError as exc:
        click.echo(f"coopnode audit: {problem(exc).message}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(render(report), nl=False)
    sys.exit(EXIT_VERIFIED if report.ok else EXIT_DOES_NOT_VERIFY)
