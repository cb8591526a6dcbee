"""The co-op's offers: ``offers`` (publish, change, withdraw, list) and ``catalogue``
(searching every offer the node knows).

Its commands import what they use when they run, so that ``coopnode --help`` and the
other commands start without loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from node.cli.common import data_dir_option, json_file, read, settings_of, with_node
from node.errors import NodeError


@click.group()
def offers() -> None:
    """The co-op's offers: publish, change, withdraw (JSON as the API takes it); the
    categories and units an offer may name."""


@offers.command("create")
@click.argument("file")
@data_dir_option
def offers_create(file: str, data_dir: Path) -> None:
    """Publish the offer described in FILE (JSON; - reads standard input)."""
    # Imported here to keep start-up fast (as in every command below).
    from node.offers import publish

    settings = settings_of(data_dir)
    data = json_file(file)
    result = with_node(settings, lambda node: publish.create_offer(node, data))
    click.echo(f"{result['id']}\t{result['uri']}")


@offers.command("update")
@click.argument("key")
@click.argument("file")
@data_dir_option
def offers_update(key: str, file: str, data_dir: Path) -> None:
    """Change offer KEY with the fields in FILE (JSON; - reads standard input)."""
    from node.offers import publish

    settings = settings_of(data_dir)
    data = json_file(file)
    result = with_node(settings, lambda node: publish.update_offer(node, key, data))
    click.echo(f"Updated {result['uri']}.")


@offers.command("withdraw")
@click.argument("key")
@data_dir_option
def offers_withdraw(key: str, data_dir: Path) -> None:
    """Withdraw offer KEY; followers are told (Delete), a Tombstone stays at its id."""
    from node.offers import publish

    settings = settings_of(data_dir)
    with_node(settings, lambda node: publish.withdraw_offer(node, key))
    click.echo(f"Withdrew {key}.")


@offers.command("list")
@data_dir_option
def offers_list(data_dir: Path) -> None:
    """The co-op's own offers, newest first: key, status, title."""
    from node.offers import store
    from node.urls import Urls

    settings = settings_of(data_dir)
    prefix = Urls(settings.base_url).offer("")
    own = read(settings, store.list_own_offers)
    if not own:
        click.echo("The co-op has no offer yet: `coopnode offers create FILE` publishes one.")
    for offer in own:
        click.echo(f"{offer.uri.removeprefix(prefix)}\t{offer.status}\t{offer.title}")


@offers.command("categories")
def offers_categories() -> None:
    """The categories an offer may name (its "categories" field): slug, kind, English
    and French labels; a subcategory is indented under its parent."""
    from node.offers import choices

    depth: dict[str, int] = {}
    for category in choices.category_list():
        parent = category["parent"]
        depth[category["slug"]] = 0 if parent is None else depth[parent] + 1
        indent = "  " * depth[category["slug"]]
        labels = category["labels"]
        click.echo(
            f"{indent}{category['slug']}\t{category['kind']}\t{labels['en']} / {labels['fr']}"
        )


@offers.command("units")
def offers_units() -> None:
    """The units an offer may be priced and counted in (its "unit" field): name and
    French label; the default when an offer names none is marked."""
    from node.offers import choices

    for unit in choices.unit_list():
        default = "\t(default)" if unit["default"] else ""
        click.echo(f"{unit['name']}\t{unit['labels']['fr']}{default}")


@click.group()
def catalogue() -> None:
    """The catalogue of every offer this node knows (its own and its followed co-ops')."""


@catalogue.command("search")
@click.argument("words", nargs=-1)
@click.option("--category", multiple=True, help="A category slug (any of those given).")
@click.option("--claim", multiple=True, help="A claim such as organic (all of those given).")
@click.option("--coop", help="Only this co-op's offers (its actor URL).")
@click.option("--currency", help="ISO 4217 code, needed for a price range or price sort.")
@click.option("--min-price")
@click.option("--max-price")
@click.option("--near", help="latitude,longitude")
@click.option("--within-km")
@click.option("--status", default="active", show_default=True)
@click.option("--sort", help="relevance, recent, price or distance")
@click.option("--limit", default="20", show_default=True)
@data_dir_option
def catalogue_search(words: tuple[str, ...], data_dir: Path, **options: Any) -> None:
    """Search offers: words in any language, with filters; one line per offer."""
    from node.catalogue import search as catalogue_search_module
    from node.clock import node_clock

    settings = settings_of(data_dir)
    params = {k: v for k, v in options.items() if v not in (None, ())}
    if words:
        params["q"] = " ".join(words)
    try:
        query = catalogue_search_module.parse_query(
            {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        )
    except NodeError as exc:
        raise click.ClickException(f"{exc.field}: {exc.reason}") from None
    now = node_clock().now()
    page = read(settings, lambda conn: catalogue_search_module.search(conn, query, now=now))
    for hit in page.hits:
        price = "" if hit.price is None else f"{hit.price} {hit.currency}/{hit.unit}"
        where = hit.place or ""
        if hit.distance_km is not None:
            where += f" ({hit.distance_km:.1f} km)"
        click.echo("\t".join([hit.title, price, where, hit.status, hit.uri]))
    if not page.hits:
        click.echo("No offer matches.", err=True)


COMMANDS = (offers, catalogue)
