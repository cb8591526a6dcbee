"""What a feature takes from the inbox: the kinds of object it recognises, and what it
does with each.

An activity is dispatched on two things: its type (``Create``, ``Accept``...) and its
*kind*, a word saying what it is about (``"vote"``, ``"offer"``, ``"follow"``...). Each
feature says, in its ``inbound`` module, which kinds it recognises (one :class:`Kind`
each: a cheap test of the activity) and which handler runs for each (type, kind).
:mod:`node.inbox.handlers` collects every feature's :class:`Inbound`;
:mod:`node.inbox.classify` names an activity's kind at receipt (what no kind fits is
stored as ``ignored``) and again in the worker's round.

This module is the contract between the inbox and the features, and imports neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.runtime import Node
    from node.services.inbox import InboxItem
    from node.urls import Urls

# Whether a verified activity is of a kind: given the activity, its verified actor and
# this node's addresses. Called for every activity received, so it reads the activity
# only: no database, no network.
Predicate = Callable[[dict[str, Any], str, "Urls"], bool]
# Handles one activity; what it raises is recorded against that activity alone
# (node.inbox.worker decides between a refusal and a retry).
Handler = Callable[["Node", "InboxItem"], Awaitable[object]]
# Handles many activities of one kind in one go (the ballots of a busy vote). Returns,
# for each activity it took, None (done) or the exception that refused it; those it did
# not take go to the kind's handler, if there is one, or are done.
BatchHandler = Callable[["Node", list["InboxItem"]], Awaitable[dict[int, Exception | None]]]
# Reads what a feature needs from a peer's profile, fetched afresh when the peer
# announced a change to it (an ``Update`` of the actor itself).
ProfileReader = Callable[["Node", "InboxItem", dict[str, Any]], Awaitable[None]]
# (activity type, kind)
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of activity a feature recognises: of ``type``, named ``name``, when
    ``applies`` says so."""

    type: str
    name: str
    applies: Predicate


@dataclass(frozen=True, slots=True)
class Inbound:
    """One feature's part of the inbox.

    ``kinds`` are tried in order, after those of the features listed before this one
    (:data:`node.inbox.handlers.FEATURES`): the first that applies names the activity's
    kind. ``handlers`` may also name another feature's kind, to act on it after that
    feature (offers are imported once a follow is accepted): several handlers of one
    (type, kind) run in the features' order."""

    name: str
    kinds: tuple[Kind, ...] = ()
    handlers: Mapping[Key, Handler] = field(default_factory=dict)
    batches: Mapping[Key, BatchHandler] = field(default_factory=dict)
    profile_readers: tuple[ProfileReader, ...] = ()


def anything(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    """The predicate of a kind that takes every activity of its type: its handler looks
    closer, and does nothing with what is not for it."""
    return True


def object_type(activity: dict[str, Any]) -> object:
    """The ``type`` of the activity's embedded object (None for a bare reference)."""
    obj = activity.get("object")
    return obj.get("type") if isinstance(obj, dict) else None


def message_of(exc: BaseException) -> str:
    """An exception's message for a log or a stored reason; one whose ``__str__`` fails
    (a peer's text can make it) is described instead."""
    try:
        return str(exc)
    except Exception:
        return f"({type(exc).__name__} with a message that cannot be shown)"
