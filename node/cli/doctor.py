"""``coopnode doctor``: what is right and what is wrong with the node's setup.

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from node.cli.common import command_clock, data_dir_option, settings_of

_MARKS = {"ok": "ok", "warning": "WARNING", "problem": "PROBLEM", "skipped": "skipped"}


@click.command("doctor")
@click.option(
    "--public/--no-public",
    default=True,
    show_default=True,
    help="Check the public setup through the node's URL (certificate, WebFinger, the "
    "proxy); --no-public checks this machine only.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@data_dir_option
def doctor(public: bool, as_json: bool, data_dir: Path) -> None:
    """Check the node and explain, in plain words, what is right and what is wrong: the
    schema, disk and permissions, the workers, the queues and failing peers, the clock
    against peers', and through the public URL the certificate, WebFinger, the actor,
    and what the reverse proxy passes on. Run it as the user that runs the node. Exit
    status 0: no problem (warnings allowed); 1: a problem to fix."""
    from node.doctor.run import diagnose

    settings = settings_of(data_dir)
    report = asyncio.run(diagnose(settings, command_clock(), public_checks=public))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "healthy": report.exit_status == 0,
                    "findings": [
                        {
                            "check": f.check,
                            "level": f.level.value,
                            "summary": f.summary,
                            "advice": f.advice,
                        }
                        for f in report.findings
                    ],
                },
                indent=2,
            )
        )
        sys.exit(report.exit_status)
    click.echo(f"coopnode doctor: {settings.name} (@{settings.handle}@{settings.domain})")
    width = max(len(f.check) for f in report.findings)
    for finding in report.findings:
        click.echo(f"{_MARKS[finding.level.value]:<8} {finding.check:<{width}}  {finding.summary}")
        if finding.advice:
            click.echo(f"{'':<8} {'':<{width}}  -> {finding.advice}")
    problems = len(report.problems)
    warnings = sum(1 for f in report.findings if f.level.value == "warning")
    if problems:
        click.echo(f"{problems} problem(s) and {warnings} warning(s): fix the problems above.")
    elif warnings:
        click.echo(f"No problem; {warnings} warning(s) worth a look.")
    else:
        click.echo("All is well.")
    sys.exit(report.exit_status)


COMMANDS = (doctor,)
