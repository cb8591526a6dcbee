"""Server-rendered pages. Jinja2 is loaded on the first page, not at start-up: most
requests a node serves are JSON for other servers."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@functools.cache
def templates() -> Jinja2Templates:
    # Jinja loads with the first page rendered, not at start-up.
    from starlette.templating import Jinja2Templates

    return Jinja2Templates(directory=str(TEMPLATES_DIR))
