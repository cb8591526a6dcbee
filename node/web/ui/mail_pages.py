"""A member's email notifications in the browser, and the pages an email's links open.

- ``GET|POST /me/notifications``: the address (and whether it is confirmed), the
  language of the emails and, for each kind the member may receive, at once, in the
  daily summary or never. An invalid entry shows the form again with the message next
  to its field; a new address gets a confirmation link.
- ``POST /me/notifications/verify``: the confirmation link again.
- ``GET|POST /mail/verify/TOKEN``: the confirmation link. Its page only shows a
  button; the address is confirmed when the button is pressed (the POST), since mail
  filters and link checkers open every link of a message.
- ``GET|POST /mail/unsubscribe/TOKEN``: the unsubscribe link. The page says what will
  stop, and stops it when its button is pressed; a mail client's one-click
  unsubscribe (RFC 8058) is the same POST, without cookie or form token, answered with
  a page (never a redirect).

The token is the authority on the last two: no session or form token is needed (a
member may open the link on another device). Their pages are kept by no cache and send
no ``Referer`` (the token is in their address).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from node.errors import Invalid, NotFound, TooLarge, TooManyRequests
from node.mail import addresses
from node.mail.kinds import ADMIN_KINDS, ALL, MEMBER_KINDS, Kind
from node.services.sessions import Session
from node.web.responses import node_of
from node.web.ui import i18n, render, sessions
from node.web.ui.member_pages import html_errors, refusal_page

# The one-click body is "List-Unsubscribe=One-Click": anything much longer is not one.
MAX_ONE_CLICK_BYTES = 4096
ONE_CLICK_TOO_LARGE = "an unsubscribe request is at most 4 KiB"
KIND_NAMES = frozenset(kind.value for kind in Kind)
# The template of each link's page, and the address its button posts to.
VERIFY_PAGE = ("mail_verify.html", "/mail/verify/")
UNSUBSCRIBE_PAGE = ("mail_unsubscribe.html", "/mail/unsubscribe/")


def _token_page(response: Response) -> Response:
    """A page whose address holds a token: kept by no cache, named to no other site."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- the member's page -----------------------------------------------------------------


async def _notifications_page(
    request: Request,
    session: Session,
    *,
    form: dict[str, str] | None = None,
    chosen: dict[str, str] | None = None,
    error: Invalid | None = None,
) -> Response:
    node = node_of(request)
    choice = i18n.choose_language(request)
    found = await addresses.preferences(node, session.member_id)
    errors: dict[str, str] = {}
    general = None
    if error is not None:
        if error.field == "email" or error.field in found.kinds:
            errors[str(error.field)] = error.reason
        else:
            general = error.reason
    shown = {kind.value: str(found.chosen[kind]) for kind in found.kinds}
    language = found.language if found.address is not None else choice.language
    query = request.query_params
    response = render.page(
        request,
        choice,
        "notifications.html",
        {
            "session": session,
            "csrf": session.csrf,
            "prefs": found,
            "member_kinds": [kind.value for kind in found.kinds if kind in MEMBER_KINDS],
            "admin_kinds": [kind.value for kind in found.kinds if kind in ADMIN_KINDS],
            "form": {
                "email": (found.address or "") if form is None else form.get("email", ""),
                "language": (form or {}).get("language") or language,
            },
            "chosen": {**shown, **(chosen or {})},
            "errors": errors,
            "general_error": general,
            "saved": error is None and query.get("saved") == "1",
            "sent": error is None and query.get("sent") == "1",
        },
        status=422 if error is not None else 200,
    )
    return render.no_store(response)


@html_errors
async def notifications(request: Request) -> Response:
    session = await sessions.require(request)
    return await _notifications_page(request, session)


@html_errors
async def change(request: Request) -> Response:
    """The form sent: the address (empty: no email at all), the language of the
    emails, and a choice for each kind."""
    session = await sessions.require(request)
    form = await sessions.read_form(request, session)
    sent = render.form_fields(form)
    node = node_of(request)
    email = sent.get("email")  # absent: unchanged; empty: no email at all
    language = sent.get("language") or None
    chosen = {name: value for name, value in sent.items() if name in KIND_NAMES}
    before = await addresses.preferences(node, session.member_id)
    try:
        after = await addresses.change(
            node, session.member_id, email=email, language=language, chosen=chosen
        )
    except Invalid as exc:
        kept = {"email": (email or "")[: addresses.MAX_ADDRESS + 64], "language": language or ""}
        return await _notifications_page(request, session, form=kept, chosen=chosen, error=exc)
    except TooManyRequests as exc:
        return render.no_store(refusal_page(request, exc))
    new_address = after.address is not None and after.address != before.address
    return RedirectResponse(
        "/me/notifications?saved=1" + ("&sent=1" if new_address else ""), status_code=303
    )


@html_errors
async def verify_again(request: Request) -> Response:
    session = await sessions.require(request)
    await sessions.read_form(request, session)
    try:
        await addresses.send_verification_again(node_of(request), session.member_id)
    except Invalid as exc:  # no address, or one already confirmed
        return await _notifications_page(request, session, error=exc)
    except TooManyRequests as exc:
        return render.no_store(refusal_page(request, exc))
    return RedirectResponse("/me/notifications?sent=1", status_code=303)


# --- the links in the emails -----------------------------------------------------------


def _link_page(request: Request, page: tuple[str, str], state: str, **more: Any) -> Response:
    """The page of an email's link: ``ask`` (a button that posts to the link),
    ``done``, or ``invalid`` (404)."""
    template, prefix = page
    action = prefix + quote(request.path_params["token"], safe="")
    response = render.page(
        request,
        i18n.choose_language(request),
        template,
        {"state": state, "action": action, **more},
        status=404 if state == "invalid" else 200,
    )
    return _token_page(response)


async def verify_form(request: Request) -> Response:
    """The confirmation link opened: a button, nothing changed yet."""
    return _link_page(request, VERIFY_PAGE, "ask")


async def verify(request: Request) -> Response:
    confirmed = await addresses.verify(node_of(request), request.path_params["token"])
    return _link_page(request, VERIFY_PAGE, "done" if confirmed else "invalid")


async def unsubscribe_form(request: Request) -> Response:
    """The unsubscribe link opened: what will stop, and a button; nothing changed yet."""
    try:
        found = await addresses.check_unsubscribe(node_of(request), request.path_params["token"])
    except NotFound:
        return _link_page(request, UNSUBSCRIBE_PAGE, "invalid")
    return _link_page(
        request, UNSUBSCRIBE_PAGE, "ask", kind=found.kind, everything=found.kind == ALL
    )


async def _one_click_body(request: Request) -> bool:
    """Read the body, up to :data:`MAX_ONE_CLICK_BYTES`, and forget it: whatever a mail
    client sends (``List-Unsubscribe=One-Click``, as a form of either encoding), the
    token alone says what to stop. False when the body is longer."""
    declared = request.headers.get("content-length")
    if declared is not None and (
        not declared.isascii() or not declared.isdigit() or int(declared) > MAX_ONE_CLICK_BYTES
    ):
        return False
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_ONE_CLICK_BYTES:
            return False
    return True


async def unsubscribe(request: Request) -> Response:
    """The button, or a mail client's one-click unsubscribe: stop, and say so with a
    page (RFC 8058 forbids a redirect)."""
    if not await _one_click_body(request):
        too_large = TooLarge(ONE_CLICK_TOO_LARGE)
        return _token_page(refusal_page(request, too_large))
    try:
        done = await addresses.unsubscribe(node_of(request), request.path_params["token"])
    except NotFound:
        return _link_page(request, UNSUBSCRIBE_PAGE, "invalid")
    return _link_page(
        request, UNSUBSCRIBE_PAGE, "done", kind=done.kind, everything=done.kind == ALL
    )


routes = [
    Route("/me/notifications", notifications, methods=["GET"]),
    Route("/me/notifications", change, methods=["POST"]),
    Route("/me/notifications/verify", verify_again, methods=["POST"]),
    Route("/mail/verify/{token}", verify_form, methods=["GET"]),
    Route("/mail/verify/{token}", verify, methods=["POST"]),
    Route("/mail/unsubscribe/{token}", unsubscribe_form, methods=["GET"]),
    Route("/mail/unsubscribe/{token}", unsubscribe, methods=["POST"]),
]
