"""A member's email notifications, by the API:

- ``GET /api/v1/me/notifications``: the address, whether it is verified, the language
  of the emails and the choice for each kind (``now``, ``daily`` or ``never``);
- ``PATCH /api/v1/me/notifications`` ``{email, language, notifications: {kind: choice}}``:
  each field optional; a new address gets a verification email, an empty one stops
  all email;
- ``POST /api/v1/me/notifications/verify``: the verification email again.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.errors import Invalid
from node.mail import addresses
from node.web.api import authenticate, json_body
from node.web.responses import node_of


async def show(request: Request) -> Response:
    info = await authenticate(request, role="observer")
    node = node_of(request)
    member_id = await addresses.member_of(node, info.actor_id)
    found = await addresses.preferences(node, member_id)
    return JSONResponse(found.to_json())


def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string", field=name)
    return value


async def change(request: Request) -> Response:
    info = await authenticate(request, role="observer")
    node = node_of(request)
    member_id = await addresses.member_of(node, info.actor_id)
    data = await json_body(request)
    chosen = data.get("notifications")
    if chosen is not None and (
        not isinstance(chosen, dict) or not all(isinstance(v, str) for v in chosen.values())
    ):
        raise Invalid(
            "notifications must map each kind to now, daily or never", field="notifications"
        )
    found = await addresses.change(
        node,
        member_id,
        email=_text(data, "email"),
        language=_text(data, "language"),
        chosen=chosen,
    )
    return JSONResponse(found.to_json())


async def verify_again(request: Request) -> Response:
    info = await authenticate(request, role="observer")
    node = node_of(request)
    member_id = await addresses.member_of(node, info.actor_id)
    await addresses.send_verification_again(node, member_id)
    return JSONResponse({"sent": True}, status_code=202)


routes = [
    Route("/api/v1/me/notifications", show, methods=["GET"]),
    Route("/api/v1/me/notifications", change, methods=["PATCH"]),
    Route("/api/v1/me/notifications/verify", verify_again, methods=["POST"]),
]
