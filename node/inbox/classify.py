"""What a verified activity is about: its kind, as the features declare kinds
(:mod:`node.inbox.feature`).

Named once at receipt, where an activity of no kind is stored as ``ignored`` and never
handed to the worker, and named again by the worker for the activities it claims (a
look at a few fields: cheaper than storing it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.inbox.handlers import KINDS

if TYPE_CHECKING:
    from node.urls import Urls


def classify(activity: dict[str, Any], *, actor: str, urls: Urls) -> str | None:
    """The kind of ``activity``, verified as ``actor``'s: the first of its type's kinds
    that applies, or None when no feature wants it."""
    type_ = activity.get("type")
    if isinstance(type_, str):
        for kind in KINDS.get(type_, ()):
            if kind.applies(activity, actor, urls):
                return kind.name
    return None
