"""What the node tells by email, who may choose to hear it, and how often by default."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    # Every member with a vote (or all members, for the outcome).
    PROPOSAL_OPENED = "proposal_opened"
    PROPOSAL_REMINDER = "proposal_reminder"
    PROPOSAL_OUTCOME = "proposal_outcome"
    # The member who ordered.
    ORDER_ANSWERED = "order_answered"
    # The member whose comment was answered.
    COMMENT_REPLY = "comment_reply"
    # The admins.
    FOLLOW_REQUEST = "follow_request"
    SHARED_INVITATION = "shared_invitation"
    ORDER_RECEIVED = "order_received"
    PEER_FAILING = "peer_failing"


# Messages that are not notifications: no preference applies to them.
VERIFY = "verify"
DIGEST = "digest"
TEST = "test"


class Frequency(StrEnum):
    NOW = "now"
    DAILY = "daily"
    NEVER = "never"


MEMBER_KINDS = (
    Kind.PROPOSAL_OPENED,
    Kind.PROPOSAL_REMINDER,
    Kind.PROPOSAL_OUTCOME,
    Kind.ORDER_ANSWERED,
    Kind.COMMENT_REPLY,
)
ADMIN_KINDS = (
    Kind.FOLLOW_REQUEST,
    Kind.SHARED_INVITATION,
    Kind.ORDER_RECEIVED,
    Kind.PEER_FAILING,
)
DEFAULTS: dict[str, Frequency] = {kind: Frequency.NOW for kind in Kind}
# The word an unsubscribe link uses for every kind at once.
ALL = "all"


def kinds_for(role: str) -> tuple[Kind, ...]:
    """The kinds a member of ``role`` may receive (and choose about)."""
    return MEMBER_KINDS + ADMIN_KINDS if role == "admin" else MEMBER_KINDS
