"""Every URL the node publishes, built in one place from its base URL.

Ids are permanent once published: change a path here only with a redirect for the old one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Urls:
    base: str  # scheme://domain, no trailing slash

    def actor(self, username: str) -> str:
        return f"{self.base}/actors/{username}"

    def actor_key(self, username: str) -> str:
        # Mastodon's convention: the RSA key is a fragment of the actor document.
        return f"{self.actor(username)}#main-key"

    def actor_multikey(self, username: str) -> str:
        return f"{self.actor(username)}#ed25519-key"

    def inbox(self, username: str) -> str:
        return f"{self.actor(username)}/inbox"

    def outbox(self, username: str) -> str:
        return f"{self.actor(username)}/outbox"

    def followers(self, username: str) -> str:
        return f"{self.actor(username)}/followers"

    def following(self, username: str) -> str:
        return f"{self.actor(username)}/following"

    def offers(self, username: str) -> str:
        return f"{self.actor(username)}/offers"

    def offer(self, key: str) -> str:
        return f"{self.base}/offers/{key}"

    def offer_note(self, key: str) -> str:
        """The readable post that goes with an offer, for servers without our vocabulary."""
        return f"{self.offer(key)}/note"

    def tag(self, slug: str) -> str:
        return f"{self.base}/tags/{slug}"

    def proposals(self, username: str) -> str:
        return f"{self.actor(username)}/proposals"

    def proposal(self, key: str) -> str:
        return f"{self.base}/proposals/{key}"

    def proposal_ballots(self, key: str) -> str:
        return f"{self.proposal(key)}/ballots"

    def proposal_replies(self, key: str) -> str:
        return f"{self.proposal(key)}/replies"

    def proposal_electorate(self, key: str) -> str:
        return f"{self.proposal(key)}/electorate"

    def proposal_outcome(self, key: str) -> str:
        """The reply that says, in words, whether the proposal passed and why."""
        return f"{self.proposal(key)}/outcome"

    def comment(self, key: str) -> str:
        return f"{self.base}/comments/{key}"

    def order(self, key: str) -> str:
        """A buyer's order: the id of the ``Offer`` activity sent to the seller."""
        return f"{self.base}/orders/{key}"

    def agreement(self, key: str) -> str:
        """An order as the seller records it: the FEP-0837 ``Agreement``."""
        return f"{self.base}/agreements/{key}"

    def ballot(self, key: str) -> str:
        return f"{self.base}/ballots/{key}"

    def members(self, username: str) -> str:
        return f"{self.actor(username)}/members"

    def profile(self, username: str) -> str:
        return f"{self.base}/@{username}"

    def activity(self, key: str) -> str:
        return f"{self.base}/activities/{key}"

    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    def context(self, file_name: str) -> str:
        return f"{self.base}/ns/{file_name}"

    def media(self, key: str, extension: str) -> str:
        return f"{self.base}/media/{key}.{extension}"
