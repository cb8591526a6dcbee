"""The bundled list of offer categories, with French and English labels.

A category's slug is stable: it is the hashtag an offer carries on the wire and the key
other coopnode nodes recognise, so a slug is never renamed (a new one is added instead).
Labels may improve at any time. Search indexes the labels in every language, which is
how "pommes" finds an offer titled only "Organic apples" in the category ``apples``.

The list is read from ``categories.json`` the first time it is needed, never at import.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType

CATEGORIES_FILE = files("node.offers") / "categories.json"  # package data

# Mastodon links a hashtag made of letters, digits and underscores; a hyphen ends it.
SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
LANGUAGES = ("en", "fr")
KINDS = ("good", "service")


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    kind: str  # "good" or "service": decides the FEP-0837 action of the offer
    labels: Mapping[str, str]  # language -> label
    parent: str | None = None

    def label(self, language: str) -> str:
        """The label in ``language``, else in English."""
        return self.labels.get(language) or self.labels["en"]


@functools.cache
def _load() -> Mapping[str, Category]:
    document = json.loads(CATEGORIES_FILE.read_text(encoding="utf-8"))
    categories: dict[str, Category] = {}
    for entry in document["categories"]:
        category = Category(
            slug=entry["slug"],
            kind=entry["kind"],
            labels=MappingProxyType(dict(entry["labels"])),
            parent=entry.get("parent"),
        )
        _check(category, categories)
        categories[category.slug] = category
    return MappingProxyType(categories)


def _check(category: Category, earlier: Mapping[str, Category]) -> None:
    """Refuse a malformed bundled list loudly rather than publish odd hashtags."""
    where = f"{CATEGORIES_FILE.name}: {category.slug!r}"
    if not SLUG_PATTERN.match(category.slug):
        raise ValueError(f"{where} is not a valid slug")
    if category.slug in earlier:
        raise ValueError(f"{where} appears twice")
    if category.kind not in KINDS:
        raise ValueError(f"{where} has kind {category.kind!r}")
    if any(not category.labels.get(language) for language in LANGUAGES):
        raise ValueError(f"{where} needs a label in each of {', '.join(LANGUAGES)}")
    if category.parent is not None and category.parent not in earlier:
        raise ValueError(f"{where} names a parent that is not listed before it")


def all_categories() -> Mapping[str, Category]:
    """Every category, by slug, in the order of the bundled list."""
    return _load()


def get(slug: str) -> Category | None:
    return _load().get(slug)


def is_known(slug: str) -> bool:
    return slug in _load()


def ancestors(slug: str) -> list[Category]:
    """The category's parents, nearest first (``apples`` -> fruit, food)."""
    found: list[Category] = []
    category = _load().get(slug)
    while category is not None and category.parent is not None:
        category = _load()[category.parent]
        found.append(category)
    return found


def search_labels(slugs: Iterable[str]) -> list[str]:
    """The words search should match for offers in ``slugs``: each category's labels in
    every language and its slug, lower-cased, without duplicates. Parents are left out:
    an offer of apples should not turn up for every search for "food"."""
    words: list[str] = []
    for slug in slugs:
        category = _load().get(slug)
        if category is None:
            continue
        for word in (*category.labels.values(), category.slug.replace("_", " ")):
            lowered = word.casefold()
            if lowered not in words:
                words.append(lowered)
    return words
