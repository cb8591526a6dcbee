"""The audit's tests each get a fresh document server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.node.governance.audit.host import DocumentServer


@pytest.fixture
def server() -> Iterator[DocumentServer]:
    served = DocumentServer().start()
    yield served
    served.stop()
