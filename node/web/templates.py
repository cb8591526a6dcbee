"""Server-rendered pages. Jinja2 is loaded on the first page, not at start-up: most
requests a node serves are JSON for other servers."""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import TYPE_CHECKING

from federation.resources import on_disk

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

# The pages' templates and, beside them, the files served under /static: package data
# of ``node``.
TEMPLATES_DIR = files("node") / "templates"
STATIC_DIR = files("node") / "static"


@functools.cache
def templates() -> Jinja2Templates:
    # Jinja loads with the first page rendered, not at start-up.
    from starlette.templating import Jinja2Templates

    return Jinja2Templates(directory=on_disk(TEMPLATES_DIR))
