"""``coopnode doctor`` as a whole: every check, in the order an admin reads them, into
one report whose exit status says whether all is well."""

from __future__ import annotations

from federation.clock import Clock
from node.doctor import clock as clock_check
from node.doctor import local, public
from node.doctor.findings import Finding, Level, Report, skipped
from node.settings import Settings
from node.storage.database import Database
from node.workers import default_pollers

NEEDS_SCHEMA = ("workers", "queues", "peers", "email", "clock", "public URL")


async def diagnose(settings: Settings, clock: Clock, *, public_checks: bool = True) -> Report:
    schema = local.schema(settings)
    findings: list[Finding] = [schema, local.disk(settings), *local.permissions(settings)]
    if schema.level is not Level.OK:
        why = "the database's schema is not this coopnode's (see above)"
        findings.extend(skipped(check, why) for check in NEEDS_SCHEMA)
        return Report(tuple(findings))
    db = Database(settings.database_url, readers=1)
    db.writer.start()
    try:
        now = clock.now()
        loops = {poller.name: poller.idle_seconds for poller in default_pollers()}
        findings.extend(
            await local.from_database(db, loops=loops, now=now, mail_on=settings.mail_on)
        )
        findings.append(await clock_check.check(settings, db, clock))
        if public_checks:
            findings.extend(await public.check(settings, db, now=now))
        else:
            findings.append(skipped("public URL", "not checked (--no-public)"))
    finally:
        db.close()
    return Report(tuple(findings))
