"""The admin's proposals page: the co-op's proposals, and the form that opens one,
internal, shared with co-ops this node follows, or put to every member co-op of a
network the co-op belongs to.

The form builds the same data the JSON API takes (``POST /api/v1/proposals``) and opens
the proposal with the same service (:func:`node.governance.proposals.create_proposal`), so every
check is the API's. An invalid entry shows the form again with what was typed and the
message next to its field; nothing is stored then.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from node.errors import Conflict, Invalid, NotFound
from node.governance import proposals, reading, sharing
from node.governance.reading import FollowedCoop
from node.members import store as members_service
from node.networks import reading as network_reading
from node.networks.model import Membership, State
from node.runtime import Node
from node.services.sessions import Session
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors, refusal_page

PROPOSALS_SHOWN = 200
TEXT_FIELDS = (
    "title",
    "text",
    "options",
    "choice",
    "max_choices",
    "rule",
    "threshold",
    "block_at",
    "quorum",
    "opens_at",
    "closes_at",
    "counting_mode",
    "coop_tie",
)
FLAGS = ("allow_change", "open_ballot", "abstentions_count", "colleges_weigh")
# The service's field names, as the form's fields: an error is shown next to its field.
FIELD_OF = {
    "multiple_choice": "choice",
    "colleges": "colleges_weigh",
    "": "form",
}
# Shown only when the co-op follows a co-op or belongs to a network: a proposal can be
# shared then.
SHARING_FIELDS = ("counting_mode", "coop_tie", "coop_weights")
FORM_FIELDS = (*TEXT_FIELDS, *FLAGS, "electorate", "network", "coop_weights")


def field_of(error: Invalid) -> str:
    """The form field a service error is about: ``options[2]`` is the options field,
    ``coop_weights.X`` the weights, ``electorate[0]`` the co-ops."""
    raw = error.field or ""
    if raw in FIELD_OF:
        return FIELD_OF[raw]
    base = raw.split("[", 1)[0].split(".", 1)[0]
    base = FIELD_OF.get(base, base)
    return base if base in FORM_FIELDS else "form"


async def _page(
    request: Request,
    session: Session,
    *,
    form: dict[str, Any] | None = None,
    error: Invalid | None = None,
) -> Response:
    node = node_of(request)
    found = await reading.admin_page(node, limit=PROPOSALS_SHOWN)
    listed, followed, colleges, invited = (
        found.listed,
        found.followed,
        found.colleges,
        found.invited,
    )
    networks = await member_networks(node)
    sent = form if form is not None else _defaults()
    shown = None if error is None else field_of(error)
    if (
        (shown in SHARING_FIELDS and not (followed or networks))
        or (shown == "electorate" and not followed)
        or (shown == "network" and not networks)
        or (shown == "colleges_weigh" and not colleges)
    ):
        shown = "form"  # the field is not on the page: the message goes above the form
    response = render.page(
        request,
        i18n.choose_language(request),
        "admin_proposals.html",
        {
            "session": session,
            "csrf": session.csrf,
            "proposals": listed,
            "invitations": invited,
            "answered": request.query_params.get("answered"),
            "followed": followed,
            "networks": networks,
            "colleges": [(c.name, members_service.percent(c.weight_bp)) for c in colleges],
            "own": node.urls.actor(node.settings.handle),
            "own_handle": f"{node.settings.handle}@{node.settings.domain}",
            "form": sent,
            "error": error,
            "error_field": shown,
        },
        status=400 if error is not None else 200,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _defaults() -> dict[str, Any]:
    return {
        "choice": "single",
        "rule": "majority",
        "counting_mode": "open",
        "coop_tie": "abstain",
        "allow_change": True,
        "open_ballot": True,
        "electorate": [],
        "network": "",
        "weights": {},
    }


async def member_networks(node: Node) -> list[Membership]:
    """The networks the co-op is a member of: each can be a proposal's electorate (an
    application still waiting cannot)."""
    return [m for m in await network_reading.memberships(node) if m.state is State.MEMBER]


def _sent(form: FormData) -> dict[str, Any]:
    """What the form holds, as typed: shown again when it is refused."""
    sent: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        value = form.get(key)
        sent[key] = value.strip() if isinstance(value, str) else ""
    for key in FLAGS:
        sent[key] = form.get(key) == "on"
    sent["electorate"] = [v.strip() for v in form.getlist("electorate") if isinstance(v, str)]
    network = form.get("network")
    sent["network"] = network.strip() if isinstance(network, str) else ""
    sent["weights"] = {
        key.removeprefix("weight:"): value.strip()
        for key, value in form.multi_items()
        if key.startswith("weight:") and isinstance(value, str) and value.strip()
    }
    return sent


def _moment(value: str) -> str:
    """A ``datetime-local`` value, read as UTC, for the service (which wants a zone)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # the service says what it expects
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _whole(value: str, field: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 6:  # not "²"
        raise Invalid("give a whole number", field=field)
    return int(value)


def proposal_data(
    sent: dict[str, Any],
    followed: list[FollowedCoop],
    own: str,
    networks: Sequence[str] = (),
) -> dict[str, Any]:
    """The form's entries as the JSON API's data (see node.governance.rules.proposal_input)."""
    data: dict[str, Any] = {
        "title": sent["title"],
        "options": [line.strip() for line in sent["options"].splitlines() if line.strip()],
        "allow_change": sent["allow_change"],
        "open_ballot": sent["open_ballot"],
        "abstentions_count": sent["abstentions_count"],
        "colleges_weigh": sent["colleges_weigh"],
    }
    if sent["text"]:
        data["text"] = sent["text"]
    if sent["choice"] not in ("single", "multiple"):
        raise Invalid("choose one choice or several", field="choice")
    data["multiple_choice"] = sent["choice"] == "multiple"
    if data["multiple_choice"]:
        if sent["max_choices"]:
            data["max_choices"] = _whole(sent["max_choices"], "max_choices")
    else:
        data["rule"] = sent["rule"]
        if sent["rule"] == "qualified":
            data["threshold"] = sent["threshold"]
        elif sent["rule"] == "consent" and sent["block_at"]:
            data["block_at"] = _whole(sent["block_at"], "block_at")
    if sent["quorum"]:
        data["quorum"] = sent["quorum"]
    if sent["opens_at"]:
        data["opens_at"] = _moment(sent["opens_at"])
    if sent["closes_at"]:
        data["closes_at"] = _moment(sent["closes_at"])
    known = {c.uri for c in followed}
    electorate = list(dict.fromkeys(sent["electorate"]))
    for uri in electorate:
        if uri not in known:
            raise Invalid(
                "a proposal is shared only with co-ops this node follows", field="electorate"
            )
    if electorate:
        data["electorate"] = electorate
    network = sent.get("network") or ""
    if network:
        if network not in networks:
            raise Invalid(
                "a proposal is put to a network only by a co-op that is its member",
                field="network",
            )
        if electorate:
            raise Invalid("choose a network or co-ops one by one, not both", field="network")
        data["network"] = network
    mode = sent["counting_mode"] or "open"
    if mode != "open" or electorate or network:
        data["counting_mode"] = mode
    if mode == "coop":
        data["coop_tie"] = sent["coop_tie"] or "abstain"
        weights = {
            coop: share
            for coop, share in sent["weights"].items()
            if coop == own or coop in electorate
        }
        if weights and network:
            # The form lists the co-ops followed, not the network's members.
            raise Invalid(
                "put to a network, every co-op weighs the same: leave the weights empty",
                field="coop_weights",
            )
        if weights:
            data["coop_weights"] = weights
    return data


@html_errors
async def admin_proposals(request: Request) -> Response:
    session = await sessions.require(request, "admin")
    return await _page(request, session)


@html_errors
async def open_proposal(request: Request) -> Response:
    """The form sent: the proposal opened as the API would, or the form again."""
    session = await sessions.require(request, "admin")
    form = await sessions.read_form(request, session)
    node = node_of(request)
    sent = _sent(form)
    followed = await reading.followed(node)
    networks = [m.network for m in await member_networks(node)]
    own = node.urls.actor(node.settings.handle)
    try:
        data = proposal_data(sent, followed, own, networks)
        created = await proposals.create_proposal(
            node,
            data,
            author=None if session.actor_id is None else node.urls.actor(session.username),
        )
    except Invalid as exc:
        return await _page(request, session, form=sent, error=exc)
    return RedirectResponse(f"/proposals/{created['id']}", status_code=303)


@html_errors
async def answer_invitation(request: Request) -> Response:
    """The admin accepts a shared proposal (members see it and vote) or declines it (its
    host is told)."""
    session = await sessions.require(request, "admin")
    form = await sessions.read_form(request, session)
    node = node_of(request)
    key = request.path_params["key"]
    answer = form.get("answer")
    try:
        if answer == "accept":
            await sharing.accept(node, key)
        elif answer == "decline":
            await sharing.decline(node, key)
        else:
            raise Invalid("answer accept or decline", field="answer")
    except (NotFound, Conflict) as exc:
        return refusal_page(request, exc)
    return RedirectResponse(f"/admin/proposals?answered={answer}", status_code=303)


routes: list[BaseRoute] = [
    Route("/admin/proposals", admin_proposals, methods=["GET"]),
    Route("/admin/proposals", open_proposal, methods=["POST"]),
    Route("/admin/proposals/invitations/{key}", answer_invitation, methods=["POST"]),
]
