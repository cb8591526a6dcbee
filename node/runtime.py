"""What a running node holds: settings, database, HTTP client and clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from federation.clock import Clock
from node.settings import Settings
from node.storage.database import Database
from node.urls import Urls


@dataclass(slots=True)
class Node:
    settings: Settings
    db: Database
    http: httpx.AsyncClient
    clock: Clock
    urls: Urls = field(init=False)

    def __post_init__(self) -> None:
        self.urls = Urls(self.settings.base_url)
