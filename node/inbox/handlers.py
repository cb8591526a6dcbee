"""Which handler runs for each (activity type, kind): every feature's inbound part,
collected in one place.

:data:`FEATURES` lists them in order: where the kinds of two features both fit an
activity, the first feature's kind is the activity's (an actor's Update of itself comes
before any feature's reading of the object; the offers' "any other Update or Delete"
comes last). A feature adds a kind of object by declaring it, with its handler, in its
own ``inbound`` module; a new feature adds its ``INBOUND`` here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from node.discussion import inbound as discussion
from node.follows import inbound as follows
from node.governance import inbound as governance
from node.inbox import actors
from node.inbox.feature import BatchHandler, Handler, Inbound, Key, Kind
from node.networks import inbound as networks
from node.offers import inbound as offers
from node.orders import inbound as orders
from node.runtime import Node
from node.services.inbox import InboxItem


def default_features() -> tuple[Inbound, ...]:
    """Every feature's part of the inbox, in order of precedence."""
    features = (
        governance.INBOUND,
        orders.INBOUND,
        networks.INBOUND,
        follows.INBOUND,
        discussion.INBOUND,
        offers.INBOUND,
    )
    readers = tuple(read for feature in features for read in feature.profile_readers)
    return (actors.inbound(readers), *features)


@dataclass(frozen=True, slots=True)
class Dispatch:
    """The features' declarations, indexed: the kinds of each activity type in order of
    precedence, and the handler or batch handler of each (type, kind)."""

    kinds: dict[str, tuple[Kind, ...]]
    handlers: dict[Key, Handler]
    batches: dict[Key, BatchHandler]


def collect(features: Iterable[Inbound]) -> Dispatch:
    """Index ``features``; a kind declared twice, a handler of a kind nobody declares,
    or a kind without a handler is a mistake in the code, refused at start-up."""
    features = tuple(features)
    kinds: dict[str, list[Kind]] = {}
    for feature in features:
        for kind in feature.kinds:
            if any(known.name == kind.name for known in kinds.get(kind.type, ())):
                raise ValueError(
                    f"{feature.name}: the kind {kind.type}/{kind.name} is declared twice"
                )
            kinds.setdefault(kind.type, []).append(kind)
    declared = {(kind.type, kind.name) for found in kinds.values() for kind in found}
    handlers: dict[Key, list[Handler]] = {}
    batches: dict[Key, BatchHandler] = {}
    for feature in features:
        for key, handler in feature.handlers.items():
            if key not in declared:
                raise ValueError(f"{feature.name}: a handler of {key}, a kind nobody declares")
            handlers.setdefault(key, []).append(handler)
        for key, batch in feature.batches.items():
            if key not in declared or key in batches:
                raise ValueError(f"{feature.name}: a batch of {key}, undeclared or taken")
            batches[key] = batch
    unhandled = declared - handlers.keys() - batches.keys()
    if unhandled:
        raise ValueError(f"kinds without a handler: {sorted(unhandled)}")
    return Dispatch(
        kinds={kind: tuple(found) for kind, found in kinds.items()},
        handlers={key: _in_turn(found) for key, found in handlers.items()},
        batches=batches,
    )


def _in_turn(handlers: Sequence[Handler]) -> Handler:
    """One handler, or several run one after the other: the first that raises stops
    the others, and the activity is tried again whole (each handler is idempotent)."""
    if len(handlers) == 1:
        return handlers[0]

    async def in_turn(node: Node, item: InboxItem) -> None:
        for handler in handlers:
            await handler(node, item)

    return in_turn


FEATURES = default_features()
DISPATCH = collect(FEATURES)
# The tables the inbox reads (node.inbox.classify, node.inbox.worker).
KINDS = DISPATCH.kinds
HANDLERS = DISPATCH.handlers
BATCHES = DISPATCH.batches
