"""Rendering the pages: one Jinja2 environment per language, made on the first page in
that language (Jinja2 is not loaded at start-up), with that language's messages
installed. Environments are never changed after they are made, so concurrent requests
in different languages share nothing that moves."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from federation.resources import on_disk
from node.web.templates import TEMPLATES_DIR
from node.web.ui import i18n

if TYPE_CHECKING:
    from jinja2 import Environment

HTML_VARY = "Accept, Accept-Language, Cookie"


@functools.cache
def environment(language: str) -> Environment:
    # Jinja loads with the first page rendered, not at start-up.
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(on_disk(TEMPLATES_DIR)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        i18n.translations(language), newstyle=True
    )
    env.globals["lang"] = language
    env.filters["price"] = lambda amount, currency: i18n.format_price(amount, currency, language)
    env.filters["number"] = lambda amount: i18n.format_number(amount, language)
    env.filters["date"] = lambda moment: i18n.format_date(moment, language)
    env.filters["datetime"] = lambda moment: i18n.format_datetime(moment, language)
    # A refusal's reason, from the services, in the page's language where it is known.
    env.filters["reason"] = lambda text: i18n.reason(text, language)
    return env


def language_links(request: Request) -> dict[str, str]:
    """The current page in each language: its query with ``lang`` replaced."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return {
        language: f"{request.url.path}?{urlencode([*kept, ('lang', language)])}"
        for language in i18n.LANGUAGES
    }


def page(
    request: Request,
    choice: i18n.Choice,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
) -> HTMLResponse:
    env = environment(choice.language)
    node = request.app.state.node
    body = env.get_template(template).render(
        {
            "coop_name": node.settings.name,
            "language_links": language_links(request),
            "path": request.url.path,
            # The session, where the handler looked it up (sessions.current).
            "session": getattr(request.state, "session", None),
            **context,
        }
    )
    response = HTMLResponse(body, status_code=status, headers={"Vary": HTML_VARY})
    response.headers["Content-Language"] = choice.language
    if choice.remember:
        response.set_cookie(
            i18n.COOKIE,
            choice.language,
            max_age=i18n.COOKIE_MAX_AGE,
            path="/",
            secure=node.settings.base_url.startswith("https://"),
            httponly=True,
            samesite="lax",
        )
    return response


def not_found(request: Request) -> HTMLResponse:
    """The page a person gets for what is not here (or not theirs to see)."""
    return page(request, i18n.choose_language(request), "not_found.html", {}, status=404)


def no_store(response: Response) -> Response:
    """A page with a form's token or someone's own data: kept by no cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def form_fields(form: Any) -> dict[str, str]:
    """A posted form's text fields, trimmed, without its token."""
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf"}
