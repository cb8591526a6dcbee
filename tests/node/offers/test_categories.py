"""The bundled category list: stable slugs that work as hashtags, labels in two languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.offers import categories
from node.offers.categories import CATEGORIES_FILE, SLUG_PATTERN


def test_the_list_is_a_realistic_size_and_every_entry_is_usable() -> None:
    listed = categories.all_categories()

    assert 40 <= len(listed) <= 80
    for slug, category in listed.items():
        assert SLUG_PATTERN.match(slug), slug
        assert category.labels["en"], slug
        assert category.labels["fr"], slug
        assert category.kind in ("good", "service"), slug


@pytest.mark.parametrize(
    ("slug", "english", "french"),
    [
        ("apples", "Apples", "Pommes"),
        ("honey", "Honey", "Miel"),
        ("coffee", "Coffee", "Café"),
        ("bike_rental", "Bike rental", "Location de vélos"),
    ],
)
def test_a_category_has_a_french_and_an_english_label(slug: str, english: str, french: str) -> None:
    category = categories.get(slug)

    assert category is not None
    assert category.label("en") == english
    assert category.label("fr") == french
    assert category.label("de") == english  # a language we lack falls back to English


def test_slugs_work_as_mastodon_hashtags() -> None:
    # Mastodon ends a hashtag at a hyphen or any character other than a letter, a digit
    # or an underscore, so "#bike-rental" would be read as "#bike".
    assert all("-" not in slug and slug.isascii() for slug in categories.all_categories())


def test_lookup_by_slug() -> None:
    assert categories.is_known("bread")
    assert not categories.is_known("Bread")
    assert categories.get("unicorns") is None


def test_services_and_goods_are_told_apart() -> None:
    assert categories.get("guided_tours").kind == "service"  # type: ignore[union-attr]
    assert categories.get("cheese").kind == "good"  # type: ignore[union-attr]


def test_ancestors_walk_up_the_tree() -> None:
    assert [c.slug for c in categories.ancestors("apples")] == ["fruit", "food"]
    assert categories.ancestors("food") == []


def test_pommes_finds_the_apples_category_in_either_language() -> None:
    # An offer titled only "Organic apples" in the apples category must be found by a
    # search for "pommes".
    words = categories.search_labels(["apples"])

    assert "pommes" in words
    assert "apples" in words
    assert "fruits" not in words  # parents are not indexed


def test_search_labels_skip_unknown_slugs_and_repeat_nothing() -> None:
    words = categories.search_labels(["textiles", "textiles", "nope"])

    assert words == ["textiles"]


def test_a_malformed_bundled_list_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = {
        "version": 1,
        "categories": [
            {"slug": "bike-rental", "kind": "service", "labels": {"en": "x", "fr": "y"}}
        ],
    }
    path = tmp_path / "categories.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    monkeypatch.setattr(categories, "CATEGORIES_FILE", path)
    categories._load.cache_clear()
    try:
        with pytest.raises(ValueError, match="not a valid slug"):
            categories.all_categories()
    finally:
        monkeypatch.undo()
        categories._load.cache_clear()


def test_the_data_file_is_declared_as_package_data() -> None:
    pyproject = (Path(__file__).parents[3] / "pyproject.toml").read_text(encoding="utf-8")

    assert CATEGORIES_FILE.name in pyproject
