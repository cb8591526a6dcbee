"""An actor's outbox page: the listed ``Create`` activities with their objects as their
own ids serve them now, and the ``@context`` they read under (see :mod:`node.published`
for what is listed; :mod:`node.published.store` finds the rows)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from federation.jsonld import AS_CONTEXT_URL, embedding_coop_terms
from node.governance import documents as governance_documents
from node.governance.rules.proposal_input import iso
from node.governance.store import proposals as proposal_store
from node.governance.store.rows import State
from node.offers import publish
from node.offers.validation import parse_offer_input
from node.offers.wire import to_note
from node.published import store
from node.runtime import Node

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True, slots=True)
class Page:
    """Activities newest first, with the ``@context`` they read under; ``newest`` and
    ``oldest`` are the row ids at its ends (the cursors of the pages before and after
    it); ``older`` says whether any listed item is older than this page."""

    items: list[dict[str, Any]]
    context: list[Any]
    newest: int | None
    oldest: int | None
    older: bool


def page(
    conn: Connection,
    node: Node,
    actor_pk: int,
    *,
    max_id: int | None = None,
    min_id: int | None = None,
    limit: int = store.PAGE_SIZE,
) -> Page:
    """Up to ``limit`` items, newest first: those just older than the row ``max_id``,
    or just newer than the row ``min_id``, or the newest of all."""
    urls = node.urls
    if min_id is not None:
        rows = store.walk(
            conn, urls, actor_pk, after=min_id, before=None, newest_first=False, wanted=limit
        )
        rows.reverse()
        older = bool(rows) and bool(
            store.walk(
                conn, urls, actor_pk, after=None, before=rows[-1].id, newest_first=True, wanted=1
            )
        )
    else:
        rows = store.walk(
            conn, urls, actor_pk, after=None, before=max_id, newest_first=True, wanted=limit + 1
        )
        older = len(rows) > limit
        rows = rows[:limit]
    items, context = _render(conn, node, rows)
    return Page(
        items=items,
        context=context,
        newest=rows[0].id if rows else None,
        oldest=rows[-1].id if rows else None,
        older=older,
    )


def _render(
    conn: Connection, node: Node, rows: list[Any]
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Each row's ``Create`` with its object as served now, and the page's context."""
    current = _current_objects(conn, node, [str(r.object_id) for r in rows])
    items = []
    contexts: list[Any] = [AS_CONTEXT_URL]
    for row in rows:
        document = current.get(str(row.object_id))
        if document is None:
            continue  # withdrawn between two reads (PostgreSQL reads what is committed)
        stored = json.loads(row.body)
        # A proof or signature over the activity as delivered would not hold over the
        # object as it is now.
        item = {k: v for k, v in stored.items() if k not in ("@context", "proof", "signature")}
        item.setdefault("published", iso(row.created_at))
        item["object"] = {k: v for k, v in document.items() if k != "@context"}
        items.append(item)
        contexts.append(document.get("@context", AS_CONTEXT_URL))
    return items, merge_contexts(contexts)


def merge_contexts(contexts: Iterable[Any]) -> list[Any]:
    """One ``@context`` list holding each entry of ``contexts`` once, in order."""
    merged: list[Any] = []
    for context in contexts:
        for entry in context if isinstance(context, list) else [context]:
            if entry not in merged:
                merged.append(entry)
    return merged


def _current_objects(conn: Connection, node: Node, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The documents of the public objects ``ids``, as their own ids serve them."""
    urls = node.urls
    note = store.suffix(urls.offer_note("k"), urls.offer("k"))
    outcome = store.suffix(urls.proposal_outcome("k"), urls.proposal("k"))
    wanted = set(ids)
    bases = wanted | {i.removesuffix(note) for i in ids} | {i.removesuffix(outcome) for i in ids}
    found: dict[str, dict[str, Any]] = {}
    for row in store.live_offer_rows(conn, bases):
        proposal = json.loads(row.document)
        proposal["@context"] = embedding_coop_terms(proposal.get("@context"))
        if row.uri in wanted:
            found[row.uri] = proposal
        if row.uri + note in wanted and row.source is not None:
            found[row.uri + note] = _offer_note(node, row, proposal)
    handle = node.settings.handle
    for uri, stored in proposal_store.by_uris(conn, bases).items():
        if uri in wanted:
            found[uri] = governance_documents.question(urls, handle, stored)
        if uri + outcome in wanted and stored.state is State.CLOSED:
            found[uri + outcome] = governance_documents.outcome_note(urls, handle, stored)
    return found


def _offer_note(node: Node, row: Any, proposal: dict[str, Any]) -> dict[str, Any]:
    """The readable ``Note`` of one of our offers, as ``/offers/KEY/note`` serves it."""
    handle = node.settings.handle
    return to_note(
        parse_offer_input(json.loads(row.source), now=row.updated),
        id=row.uri + store.suffix(node.urls.offer_note("k"), node.urls.offer("k")),
        proposal_id=row.uri,
        actor=node.urls.actor(handle),
        published=publish.parse_time(proposal["published"]),
        updated=row.updated,
        followers=node.urls.followers(handle),
        hashtag_href=node.urls.tag,
    )
