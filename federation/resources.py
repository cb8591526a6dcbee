"""The files that ship with the code, found through :mod:`importlib.resources`.

Code never builds a data file's path from its own ``__file__``: read through the
packages, the files are found the same way in a checkout, in an editable install and in
a wheel installed into any virtual environment.

The JSON-LD contexts and JSON schemas live in the checkout's top-level ``schemas/``
directory, their single copy; the ``federation`` package carries them as
``federation/schemas`` (a link to ``../schemas`` in the checkout, the files themselves
in a built wheel).
"""

from __future__ import annotations

import atexit
import contextlib
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

# What as_file has extracted lasts as long as the process: the libraries given a path
# (Jinja's loader, Starlette's StaticFiles) keep reading it while the node runs.
_kept = contextlib.ExitStack()
atexit.register(_kept.close)


def schemas() -> Traversable:
    """The ``schemas`` directory: ``contexts/*.jsonld`` and ``offer.schema.json``."""
    return files("federation") / "schemas"


def on_disk(resource: Traversable) -> Path:
    """A real path to ``resource`` (a file or a directory), for libraries that take
    nothing else. A package installed on disk (a checkout, a wheel installed by pip)
    gives its own path; a package in an archive is extracted to a temporary place that
    lasts until the process exits."""
    return _kept.enter_context(as_file(resource))
