"""The fuzzing suite's co-ops, built once per test, and its counts at the end."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fuzz.tally import TALLY
from tests.fuzz.world import World, build_world
from tests.support.network import Network


@pytest.fixture
async def world(network: Network, backend: str) -> World:
    built = await build_world(network)
    built.backend = backend
    return built


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.cases:
        terminalreporter.write_line(TALLY.report())
