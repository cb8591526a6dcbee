"""The values an offer's ``categories`` and ``unit`` may take, as the API and the
command line list them: what an admin looks up before writing an offer's JSON."""

from __future__ import annotations

from typing import Any

from node.offers import categories
from node.offers.model import DEFAULT_UNIT, UNITS


def category_list() -> list[dict[str, Any]]:
    """Every category in the bundled list's order: its slug (what an offer names), its
    kind (a good or a service), its labels by language, and its parent's slug."""
    return [
        {
            "slug": category.slug,
            "kind": category.kind,
            "labels": dict(category.labels),
            "parent": category.parent,
        }
        for category in categories.all_categories().values()
    ]


def unit_list() -> list[dict[str, Any]]:
    """Every unit an offer may be priced and counted in: its name (what an offer
    names), its labels by language, and whether it is the default."""
    return [
        {"name": unit.name, "labels": dict(unit.labels), "default": unit.name == DEFAULT_UNIT}
        for unit in UNITS.values()
    ]
