"""Logging in from a browser, and what every page and form of the web interface checks.

- The session cookie is HTTP-only, ``SameSite=Lax``, and on an https node ``Secure``
  with the ``__Host-`` prefix (the browser then refuses it from any other origin, path
  or insecure page). It holds 256 random bits; the database keeps their hash
  (:mod:`node.services.sessions`).
- Every form carries a token compared in constant time: the session's own, or, for
  the login form (no session yet), one held in a cookie of its own (double submit).
  A form is also refused when the browser says it comes from another site
  (``Sec-Fetch-Site: cross-site``, or an ``Origin`` other than the node's).
- Logging in is limited as the API's login is (:mod:`node.web.ratelimit`: failures per
  account and per address), and answers an unknown name as slowly as a wrong password.
- :func:`require` enforces a role on a page: anonymous visitors are sent to the login
  form (and back afterwards), a member without the role gets a 403 page.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from federation.storable import UNSTORABLE, storable
from node.errors import (
    BadRequest,
    Forbidden,
    Invalid,
    NotAuthenticated,
    TooLarge,
    TooManyRequests,
)
from node.services import sessions, tokens
from node.services.sessions import Session
from node.settings import FORM_FIELDS_MAX_BYTES
from node.web.members import check_password
from node.web.responses import node_of
from node.web.ui import i18n, render

COOKIE = "coopnode_session"
SECURE_COOKIE = "__Host-coopnode_session"
FORM_COOKIE = "coopnode_form"
MAX_FORM_BYTES = FORM_FIELDS_MAX_BYTES
"""Forms without files; an offer's photo form sets its own limit."""
_ANONYMOUS = object()


class LoginRequired(NotAuthenticated):
    """A page for members only, asked for without a session: the app answers with the
    login form's address, and ``next`` brings the visitor back after logging in."""

    def __init__(self, next_path: str) -> None:
        super().__init__("this page is for members: log in to see it")
        self.next_path = next_path


def _secure(request: Request) -> bool:
    return str(node_of(request).settings.base_url).startswith("https://")


def cookie_name(request: Request) -> str:
    return SECURE_COOKIE if _secure(request) else COOKIE


async def current(request: Request) -> Session | None:
    """The request's open session, looked up once per request."""
    cached = getattr(request.state, "session", _ANONYMOUS)
    if cached is None or isinstance(cached, Session):
        return cached
    node = node_of(request)
    token = request.cookies.get(cookie_name(request))
    found: Session | None = None
    if token:
        now = node.clock.now()
        found = await node.db.read(lambda conn: sessions.find_session(conn, token, now=now))
        if found is not None and sessions.needs_touch(found, now):
            session_id = found.id
            await node.db.write(lambda conn: sessions.touch(conn, session_id, now=now))
    request.state.session = found
    return found


async def require(request: Request, role: str = "observer") -> Session:
    """The session of a member with ``role`` (or a role above it)."""
    session = await current(request)
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    if not tokens.allows(session.role, role):
        raise Forbidden(f"this page needs the {role} role")
    return session


def login_redirect(exc: LoginRequired) -> Response:
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)


def safe_next(value: object) -> str:
    """Where to go after logging in: a path on this node, never another site (an open
    redirect would lend the node's name to a phishing page)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def form_token(request: Request, response: Response | None = None) -> str:
    """The token to put in an anonymous form (the login form), kept in its own cookie;
    set on ``response`` when the visitor has none yet."""
    token = request.cookies.get(FORM_COOKIE)
    if not token or len(token) > 128:
        token = sessions.new_secret()
        request.state.new_form_token = token
    if response is not None:
        set_form_cookie(request, response)
    return token


def set_form_cookie(request: Request, response: Response) -> None:
    token = getattr(request.state, "new_form_token", None)
    if token:
        response.set_cookie(
            FORM_COOKIE,
            token,
            path="/",
            secure=_secure(request),
            httponly=True,
            samesite="strict",
        )


async def read_form(request: Request, session: Session | None) -> FormData:
    """A form sent from one of this node's pages: from this site, not too large, and
    with the right token. Anything else is refused before the form is acted on."""
    check_same_site(request)
    # Browsers send a form with its length; without one, the body could be endless.
    declared = request.headers.get("content-length")
    sized = declared is not None and declared.isascii() and declared.isdigit()
    if declared is None or not sized or int(declared) > MAX_FORM_BYTES:
        raise TooLarge(f"a form is at most {MAX_FORM_BYTES // 1024} KiB, sent with its length")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Invalid("send the page's form", field="content-type")
    form = await request.form(max_files=0, max_fields=200)
    expected = session.csrf if session is not None else request.cookies.get(FORM_COOKIE)
    check_token(form, expected)
    check_storable(form)
    return form


def check_storable(form: FormData) -> None:
    """Refuse a form whose names or texts hold a NUL or an unpaired surrogate: no column
    can hold them (PostgreSQL refuses NUL mid-query), so they are refused here, with the
    field named, rather than met as a 500 further on."""
    for name, value in form.multi_items():
        if UNSTORABLE.search(name) or (isinstance(value, str) and UNSTORABLE.search(value)):
            raise BadRequest(
                "the form holds a character that cannot be stored (NUL)",
                field=storable(name, limit=100),
            )


def check_same_site(request: Request) -> None:
    """Refuse a form the browser says comes from another site: ``Sec-Fetch-Site``, or
    an ``Origin`` that is not this node's."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("this form was sent from another site")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        base = urlsplit(str(node_of(request).settings.base_url))
        if origin.rstrip("/") != f"{base.scheme}://{base.netloc}":
            raise Forbidden("this form was sent from another site")


def check_token(form: FormData, expected: str | None) -> None:
    """The form's token against the one expected, compared in constant time."""
    sent = form.get("csrf")
    if (
        not expected
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise Forbidden(
            "this form has expired or did not come from this site: reload the page and "
            "send it again"
        )


# --- the login and logout pages --------------------------------------------------------


def _login_page(
    request: Request,
    *,
    next_path: str,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    choice = i18n.choose_language(request)
    context: dict[str, Any] = {
        "csrf": form_token(request),
        "next": next_path,
        "username": username,
        "error": error,
    }
    response = render.page(request, choice, "login.html", context, status=status)
    set_form_cookie(request, response)
    response.headers["Cache-Control"] = "no-store"
    return response


async def login_form(request: Request) -> Response:
    if await current(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(request, next_path=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    """The login form sent: checked, limited, then a new session and its cookie."""
    node = node_of(request)
    form = await read_form(request, None)
    username = form.get("username")
    password = form.get("password")
    next_path = safe_next(form.get("next"))
    if not isinstance(username, str) or not username.strip() or not isinstance(password, str):
        return _login_page(
            request,
            next_path=next_path,
            username=username if isinstance(username, str) else "",
            error="missing",
            status=400,
        )
    username = username.strip()[:64]
    try:
        member = await check_password(request, username, password)
    except TooManyRequests:  # the same refusal as the API's, in the page
        return _login_page(
            request, next_path=next_path, username=username, error="limited", status=429
        )
    except Invalid:
        return _login_page(
            request, next_path=next_path, username=username, error="wrong", status=400
        )
    now = node.clock.now()
    agent = request.headers.get("user-agent")
    token = await node.db.write(
        lambda conn: sessions.open_session(conn, member.id, now=now, user_agent=agent)
    )
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        cookie_name(request),
        token,
        max_age=int(sessions.LIFETIME.total_seconds()),
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )
    response.delete_cookie(FORM_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    session = await current(request)
    if session is not None:
        await read_form(request, session)
        token = request.cookies.get(cookie_name(request), "")
        node = node_of(request)
        await node.db.write(lambda conn: sessions.close_session(conn, token))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(cookie_name(request), path="/", secure=_secure(request), httponly=True)
    return response
