"""A ballot's Notes and their proofs.

Each published ballot carries the Notes its voter sent, signed by the voter's own node
where it is a coopnode (FEP-8b32 ``eddsa-jcs-2022`` proofs). The Notes must say what the
ballot says (this proposal, this voter, exactly the ballot's choices), and each proof
must verify with a key that the voter's own actor document publishes: a proof made with
another actor's key proves nothing about the voter (key confusion), and a proof that
fails means the ballot was changed after the voter signed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urldefrag

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation import keys, proofs
from federation.errors import FederationError
from node.governance.audit.fetch import ACTOR_CONCURRENCY, FetchDocument
from node.governance.audit.fields import quoted
from node.governance.audit.report import BallotCheck

MAX_NOTES_PER_BALLOT = 64


def _check_notes(check: BallotCheck, proposal_id: str) -> list[dict[str, Any]]:
    """The ballot's Notes that carry a proof, after checking that the Notes say what the
    ballot says: this proposal, this voter, and exactly the ballot's choices."""
    signed: list[dict[str, Any]] = []
    names: list[str] = []
    if len(check.votes) > MAX_NOTES_PER_BALLOT:
        check.problems.append(f"{len(check.votes)} Notes, more than any ballot can need")
    for index, note in enumerate(check.votes[:MAX_NOTES_PER_BALLOT]):
        if not isinstance(note, dict):
            check.problems.append(f"vote {index + 1} is not a Note object")
            continue
        if note.get("inReplyTo") != proposal_id:
            check.problems.append(
                f"vote {index + 1} replies to {quoted(note.get('inReplyTo'))}, not this proposal"
            )
        if note.get("attributedTo") != check.voter:
            check.problems.append(
                f"vote {index + 1} is attributed to {quoted(note.get('attributedTo'))}, "
                "not the voter"
            )
        name = note.get("name")
        if not isinstance(name, str) or name not in check.choices:
            check.problems.append(
                f"vote {index + 1} names {quoted(name)}, which is not among the ballot's "
                f"choices {list(check.choices)}"
            )
        else:
            names.append(name)
        if "proof" in note:
            signed.append(note)
    if check.votes and sorted(names) != sorted(check.choices) and not check.problems:
        check.problems.append(f"the Notes name {sorted(names)}, the ballot {sorted(check.choices)}")
    if not check.votes and check.choices:
        check.problems.append("the ballot carries no Note")
    if check.problems:
        check.proof = "inconsistent"
    return signed


def keys_of_voter(voter: str, document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys the voter's own actor document publishes for assertions."""
    if document.get("id") != voter:
        return {}
    found: dict[str, Ed25519PublicKey] = {}
    entries = document.get("assertionMethod")
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        return found
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("controller") != voter:
            continue
        key_id = entry.get("id")
        if not isinstance(key_id, str) or entry.get("type", "Multikey") != "Multikey":
            continue
        try:
            found[key_id] = keys.multibase_to_ed25519(entry.get("publicKeyMultibase"))  # type: ignore[arg-type]
        except ValueError:
            continue
    return found


def _verify_ballot(
    check: BallotCheck, signed: list[dict[str, Any]], voter_keys: dict[str, Ed25519PublicKey] | str
) -> None:
    """Verify each signed Note of the ballot; ``voter_keys`` is the voter's keys, or why
    they could not be fetched."""
    failures: list[str] = []
    verified = 0
    for note in signed:
        # The key is looked up by the method the proof names; verify() then checks the
        # whole proof. Asking verification_method() first would decode every signature
        # twice, a tenth of an audit's time.
        proof = note["proof"]
        method = proof.get("verificationMethod") if isinstance(proof, dict) else None
        if not isinstance(method, str):
            try:
                proofs.verification_method(note)
            except proofs.ProofError as exc:
                failures.append(f"unreadable proof: {exc.reason}")
            continue
        if isinstance(voter_keys, str):
            continue  # cannot tell: the host vouches for it
        key = voter_keys.get(method)
        if key is None:
            owner = urldefrag(method).url
            if owner != check.voter:
                failures.append(
                    f"signed with {method}, a key of {owner}, not of the voter (key confusion)"
                )
            else:
                failures.append(f"signed with {method}, which the voter's actor does not publish")
            continue
        try:
            proofs.verify(note, key)
        except proofs.ProofError as exc:
            failures.append(f"the proof does not verify: {exc.reason}")
            continue
        verified += 1
    if failures:
        check.proof = "failed"
        check.problems.extend(failures)
    elif isinstance(voter_keys, str):
        check.problems.append(f"its proof could not be checked: {voter_keys}")
    elif verified == len(check.votes):
        check.proof = "verified"
    else:
        check.problems.append(f"only {verified} of its {len(check.votes)} Notes carry a proof")


class Verifier:
    """Checks ballots as their pages arrive: each ballot's Notes at once, then its proofs
    once its voter's actor document is in. Each voter's document is fetched once
    (:data:`ACTOR_CONCURRENCY` at a time), and the fetching starts with the first page,
    so that the walk, the fetches and the verifications overlap."""

    def __init__(self, fetch: FetchDocument, proposal_id: str) -> None:
        self._fetch = fetch
        self._proposal_id = proposal_id
        self._gate = asyncio.Semaphore(ACTOR_CONCURRENCY)
        self._keys: dict[str, asyncio.Future[dict[str, Ed25519PublicKey] | str]] = {}
        self._tasks: list[asyncio.Future[None]] = []

    def add(self, check: BallotCheck) -> None:
        signed = _check_notes(check, self._proposal_id)
        if signed and not check.problems:
            self._tasks.append(asyncio.ensure_future(self._verify(check, signed)))

    async def _verify(self, check: BallotCheck, signed: list[dict[str, Any]]) -> None:
        keys_of = self._keys.get(check.voter)
        if keys_of is None:
            keys_of = self._keys[check.voter] = asyncio.ensure_future(self._load(check.voter))
        _verify_ballot(check, signed, await keys_of)

    async def _load(self, voter: str) -> dict[str, Ed25519PublicKey] | str:
        async with self._gate:
            try:
                return keys_of_voter(voter, await self._fetch(voter))
            except FederationError as exc:
                return f"the voter's actor document is unavailable ({exc.reason})"

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        for loading in self._keys.values():
            loading.cancel()
