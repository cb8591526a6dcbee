"""The audit of one closed proposal, from its URL: the Question read, then its ballots or
its co-ops' subtotals checked and recounted."""

from __future__ import annotations

import httpx

from federation.errors import FetchError
from federation.fetch import check_url
from node.governance.audit.ballots import audit_ballots
from node.governance.audit.fetch import Sources
from node.governance.audit.fields import AuditError, quoted, string
from node.governance.audit.read import read_outcome, read_proposal
from node.governance.audit.report import AuditReport
from node.governance.audit.subtotals import audit_subtotals
from node.governance.audit.walk import fetch_or_fail, url_origin


async def audit(url: str, *, http: httpx.AsyncClient, allow_http: bool = False) -> AuditReport:
    """Fetch the closed proposal at ``url`` with everything its count used, verify what
    can be verified, recount, and say where the published result and the recount
    differ. Raises :class:`AuditError` when the proposal cannot be reached or read."""
    try:
        check_url(url, allow_http=allow_http)
    except FetchError as exc:
        raise AuditError(exc.reason) from None
    sources = Sources(http, allow_http=allow_http)
    question = await fetch_or_fail(sources.document, url, "proposal")
    if question.get("type") != "Question":
        raise AuditError(f"{url} is a {quoted(question.get('type'))}, not a Question", field="type")
    proposal_id = string(question.get("id"), "id")
    # The document's own id, which fetch_json checked it is served at: everything the
    # count used must live on that host.
    origin = url_origin(proposal_id)
    if not question.get("closed"):
        raise AuditError(
            "the proposal is not closed: its result is only final, and its ballots only "
            "published, once it is",
            field="closed",
        )
    if question.get("countingMode") == "subtotal":
        proposal = read_proposal(question)
        async with sources.actors() as actors:
            return await audit_subtotals(
                question,
                url=url,
                proposal=proposal,
                published=read_outcome(question, proposal),
                fetch=sources.document,
                fetch_large=sources.page,
                actors=actors,
            )
    async with sources.actors() as actors:
        return await audit_ballots(
            question,
            url=url,
            origin=origin,
            fetch=sources.document,
            fetch_large=sources.page,
            actors=actors,
        )
