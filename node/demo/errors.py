"""Why the demo cannot run."""

from __future__ import annotations

from node.errors import NodeError


class DemoError(NodeError):
    """The demo cannot start (a port is taken, a directory holds something else, a node
    failed), or its data file is broken; the message says why."""
