"""A co-op's data as each schema revision stored it, to test upgrades with.

Every table gets rows from the revision that created it on; a column a later revision
added (all of them nullable) is left out of rows written at an earlier revision, as the
code of that time wrote them. :func:`seed` inserts, at a database's revision, the rows of
every table that revision has, with only the columns that revision has; after the
upgrade, :func:`expected` says what each row must read as (the columns added since are
null).

The rows look like a small co-op after some months: the co-op and a member with keys and
tokens, peers and their activities, followers, deliveries in every state, offers with
categories and photos, members in colleges, proposals with ballots, a shared proposal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from federation import keys
from node.catalogue.text import filter_word, price_word, search_text
from node.services.tokens import hash_token
from node.storage.types import UtcDateTime

BASE = "https://coop.example"
PEER = "https://peer.example"
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ADMIN_TOKEN = "cn_admin-token-from-an-older-version"
MEMBER_TOKEN = "cn_member-token-from-an-older-version"
OFFER_WORDS = ("pommes", "poires", "confiture", "miel", "pain")
OFFERS = 24  # local ones; a few remote ones come with them


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


@dataclass(frozen=True)
class Rows:
    """One table's rows: ``since`` the revision that created it, ``later`` each column a
    later revision added (by that revision), ``changed`` what a later revision does to
    rows written before it (by that revision: a function of a row and the revision it was
    written at)."""

    table: str
    since: str
    rows: list[dict[str, Any]]
    later: dict[str, str] = field(default_factory=dict)
    changed: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = field(
        default_factory=dict
    )

    def upgraded(self, row: dict[str, Any], revision: str) -> dict[str, Any]:
        """``row`` written at ``revision``, as the later revisions leave it."""
        row = {**row, **{k: None for k in self.later if self.later[k] > revision}}
        for later, change in sorted(self.changed.items()):
            if later > revision:
                row = change(row, revision)
        return row

    def written_at(self, revision: str) -> list[dict[str, Any]]:
        """The rows as the code of ``revision`` wrote them: without later columns."""
        return [
            {k: v for k, v in row.items() if self.later.get(k, "0000") <= revision}
            for row in self.rows
        ]


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


COOP_RSA = keys.generate_rsa_private_pem()
COOP_ED25519 = keys.generate_ed25519_private_pem()
ALICE_ED25519 = keys.generate_ed25519_private_pem()


def _offer(i: int) -> dict[str, Any]:
    local = i < OFFERS
    actor = f"{BASE}/actors/coop" if local else f"{PEER}/actors/coop"
    word = OFFER_WORDS[i % len(OFFER_WORDS)]
    title = f"{word.capitalize()} du verger n°{i}"
    category = "food" if i % 2 == 0 else "preserves"
    return {
        "id": i + 1,
        "uri": f"{actor.rsplit('/actors/', 1)[0]}/offers/o{i}",
        "actor": actor,
        "host": "coop.example" if local else "peer.example",
        "local": int(local),
        "status": "withdrawn" if i == 3 else "active",
        "title": title,
        "currency": "EUR",
        "price_e4": 35_000 + i * 1_000,  # 3.50 €, 3.60 €...
        "unit": "kg",
        "place": "Rennes",
        "latitude": 48.11 + i / 1000,
        "longitude": -1.68,
        "end_time": None if i % 5 else at(400),
        "published": at(i),
        "updated": at(i),
        "received_at": at(i),
        "search_text": search_text(
            [title, f"De bons {word}.", "Rennes", filter_word("category", category)]
        ),
        "document": _json(
            {
                "id": f"{actor.rsplit('/actors/', 1)[0]}/offers/o{i}",
                "type": "Offer",
                "name": title,
                "attributedTo": actor,
            }
        ),
        "source": _json({"title": title, "categories": [category]}) if local else None,
        "author_id": None,
    }


def _priced(row: dict[str, Any], revision: str) -> dict[str, Any]:
    """Migration 0022: each priced offer's searchable text gains its price's word."""
    word = price_word(row["currency"], row["price_e4"])
    return {**row, "search_text": f"{row['search_text']} {word}"}


def _proposal(pk: int, key: str, state: str, closes: float) -> dict[str, Any]:
    closed = state == "closed"
    return {
        "id": pk,
        "key": key,
        "uri": f"{BASE}/proposals/{key}",
        "actor_id": 1,
        "author": f"{BASE}/actors/alice",
        "title": f"Proposal {key}",
        "source": _json({"title": f"Proposal {key}", "options": ["Yes", "No", "Abstain"]}),
        "content": "<p>Buy a cider press together.</p>",
        "options": _json(
            [
                {"name": "Yes", "role": "for"},
                {"name": "No", "role": "against"},
                {"name": "Abstain", "role": "abstain"},
            ]
        ),
        "multiple_choice": 0,
        "max_choices": 1,
        "rule": "qualified",
        "threshold": "2/3",
        "block_at": None,
        "quorum": "1/2",
        "abstentions_count": 0,
        "allow_change": 1,
        "colleges_weigh": 1,
        "college_weights": _json({"producers": "2/3", "consumers": "1/3"}),
        "open_ballot": 0,
        "counting_mode": "open",
        "opens_at": at(30),
        "closes_at": at(closes),
        "state": state,
        "eligible": 3,
        "roster_digest": "sha-256=" + "a" * 43 + "=",
        "counts": _json({"counts": {"Yes": 2, "No": 1, "Abstain": 0}, "voters": 3}),
        "counts_dirty": 0 if closed else 1,
        "counts_published_at": at(31),
        "outcome": _json({"adopted": True}) if closed else None,
        "closed_at": at(closes) if closed else None,
        "published": at(29),
        "updated": at(31),
        "mirror": None,
    }


VOTERS = [f"{BASE}/actors/alice", f"{PEER}/actors/bob", f"{BASE}/actors/carol"]


def _ballot(pk: int, proposal: int, voter: int, choice: str, days: float) -> dict[str, Any]:
    return {
        "id": pk,
        "proposal_id": proposal,
        "voter": VOTERS[voter],
        "college": "producers" if voter != 1 else "consumers",
        "choices": _json([choice]),
        "activity_id": f"{VOTERS[voter]}/votes/{pk}",
        "cast_at": at(days),
        "state": "counted",
        "reason": None,
        "notes": "[]",
        "signature": None,
    }


def _delivery(pk: int, state: str, activity: int, days: float) -> dict[str, Any]:
    finished = state != "pending"
    return {
        "id": pk,
        "activity_pk": activity,
        "inbox": f"https://{'peer' if pk % 2 else 'far'}.example/users/{pk}/inbox",
        "host": "peer.example" if pk % 2 else "far.example",
        "state": state,
        "attempts": 1 if state == "delivered" else 5,
        "created_at": at(days),
        "next_attempt_at": at(days + 1),
        "claimed_until": None,
        "finished_at": at(days + 1) if finished else None,
        "last_status": 202 if state == "delivered" else 503,
        "last_error": None if state == "delivered" else "503 Service Unavailable",
        "ordering_key": None,
    }


def _unlisted(row: dict[str, Any], revision: str) -> dict[str, Any]:
    """Migration 0017: the Create of the withdrawn offer o3 leaves the outbox collection,
    where the offers table holds it (from 0005 on)."""
    return {**row, "public": 0} if row["id"] == 5 and revision >= "0005" else row


def _activity(pk: int, type_: str, public: int, obj: str) -> dict[str, Any]:
    return {
        "id": pk,
        "activity_id": f"{BASE}/activities/{pk}",
        "actor_id": 1,
        "type": type_,
        "body": _json(
            {"id": f"{BASE}/activities/{pk}", "type": type_, "object": {"id": obj, "type": "Offer"}}
        ),
        "public": public,
        "created_at": at(pk),
    }


TABLES: list[Rows] = [
    Rows(
        "actors",
        "0001",
        [
            {
                "id": 1,
                "username": "coop",
                "type": "Group",
                "name": "Le Verger",
                "summary": "Fruits et confitures",
                "created_at": T0,
                "updated_at": at(2),
            },
            {
                "id": 2,
                "username": "alice",
                "type": "Person",
                "name": "Alice",
                "summary": "",
                "created_at": at(1),
                "updated_at": at(1),
            },
        ],
    ),
    Rows(
        "actor_keys",
        "0001",
        [
            {"id": 1, "actor_id": 1, "kind": "rsa", "private_pem": COOP_RSA, "created_at": T0},
            {
                "id": 2,
                "actor_id": 1,
                "kind": "ed25519",
                "private_pem": COOP_ED25519,
                "created_at": T0,
            },
            {
                "id": 3,
                "actor_id": 2,
                "kind": "ed25519",
                "private_pem": ALICE_ED25519,
                "created_at": at(1),
            },
        ],
    ),
    Rows(
        "api_tokens",
        "0001",
        [
            {
                "id": 1,
                "token_hash": hash_token(ADMIN_TOKEN),
                "name": "admin (created by init)",
                "role": "admin",
                "actor_id": None,
                "created_at": T0,
                "revoked_at": None,
            },
            {
                "id": 2,
                "token_hash": hash_token(MEMBER_TOKEN),
                "name": "alice's phone",
                "role": "member",
                "actor_id": 2,
                "created_at": at(1),
                "revoked_at": None,
            },
            {
                "id": 3,
                "token_hash": hash_token("cn_revoked"),
                "name": "old laptop",
                "role": "admin",
                "actor_id": None,
                "created_at": T0,
                "revoked_at": at(5),
            },
        ],
    ),
    Rows(
        "remote_actors",
        "0002",
        [
            {
                "id": i + 1,
                "uri": uri,
                "host": "peer.example",
                "type": type_,
                "inbox": f"{uri}/inbox",
                "shared_inbox": f"{PEER}/inbox",
                "key_id": f"{uri}#main-key",
                "public_key_pem": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n",
                "document": _json({"id": uri, "type": type_, "inbox": f"{uri}/inbox"}),
                "fetched_at": at(3 + i),
            }
            for i, (uri, type_) in enumerate(
                [(f"{PEER}/actors/coop", "Group"), (f"{PEER}/actors/bob", "Person")]
            )
        ],
    ),
    Rows(
        "inbox_activities",
        "0002",
        [
            {
                "id": i + 1,
                "activity_id": f"{PEER}/activities/{i}",
                "actor": f"{PEER}/actors/coop",
                "type": type_,
                "body": _json({"id": f"{PEER}/activities/{i}", "type": type_}),
                "state": state,
                "attempts": 0 if state == "pending" else 1,
                "received_at": at(4 + i),
                "next_attempt_at": at(4 + i),
                "claimed_until": None,
                "processed_at": None if state == "pending" else at(4 + i),
                "last_error": "no such object" if state == "failed" else None,
            }
            for i, (type_, state) in enumerate(
                [
                    ("Follow", "done"),
                    ("Create", "pending"),
                    ("Update", "failed"),
                    ("Like", "ignored"),
                ]
            )
        ],
    ),
    Rows(
        "followers",
        "0004",
        [
            {
                "id": i + 1,
                "actor_id": 1,
                "follower": follower,
                "host": "peer.example",
                "follow_id": f"{follower}/follows/1",
                "state": state,
                "inbox": f"{follower}/inbox",
                "shared_inbox": f"{PEER}/inbox",
                "created_at": at(4 + i),
                "accepted_at": at(4 + i) if state == "accepted" else None,
            }
            for i, (follower, state) in enumerate(
                [(f"{PEER}/actors/coop", "accepted"), (f"{PEER}/actors/bob", "pending")]
            )
        ],
    ),
    Rows(
        "following",
        "0004",
        [
            {
                "id": 1,
                "actor_id": 1,
                "followed": f"{PEER}/actors/coop",
                "host": "peer.example",
                "follow_id": f"{BASE}/follows/1",
                "state": "accepted",
                "created_at": at(4),
                "accepted_at": at(4.5),
            }
        ],
    ),
    Rows(
        "outbox_activities",
        "0004",
        [
            _activity(1, "Accept", 0, f"{PEER}/activities/0"),
            *(_activity(i, "Create", 1, f"{BASE}/offers/o{i - 2}") for i in range(2, 8)),
        ],
        changed={"0017": _unlisted},
    ),
    Rows(
        "deliveries",
        "0004",
        [
            _delivery(i + 1, state, 2 + i % 6, 6 + i)
            for i, state in enumerate(["delivered"] * 6 + ["pending"] * 3 + ["failed", "dropped"])
        ],
        later={"ordering_key": "0006"},
    ),
    Rows(
        "domains",
        "0004",
        [
            {
                "id": 1,
                "host": "spam.example",
                "policy": "block",
                "reason": "spam",
                "failing_since": None,
                "unavailable": 0,
                "last_error": None,
                "last_success_at": None,
                "updated_at": at(2),
            },
            {
                "id": 2,
                "host": "far.example",
                "policy": "none",
                "reason": "",
                "failing_since": at(10),
                "unavailable": 1,
                "last_error": "connection refused",
                "last_success_at": at(8),
                "updated_at": at(16),
            },
        ],
    ),
    Rows(
        "offers",
        "0005",
        [_offer(i) for i in range(OFFERS + 4)],
        later={"author_id": "0011"},
        changed={"0022": _priced},
    ),
    # The words of those offers (migration 0021 reads them from the offers before it).
    Rows(
        "catalogue_words",
        "0021",
        [
            {"word": w}
            for w in sorted(
                {
                    w
                    for i in range(OFFERS + 4)
                    for w in _offer(i)["search_text"].split()
                    if not w.startswith("zz")
                }
            )
        ],
    ),
    Rows(
        "offer_categories",
        "0005",
        [
            {"offer_id": i + 1, "slug": "food" if i % 2 == 0 else "preserves"}
            for i in range(OFFERS + 4)
        ],
    ),
    Rows(
        "offer_claims",
        "0005",
        [{"offer_id": i + 1, "claim": "organic"} for i in range(0, OFFERS, 3)],
    ),
    Rows(
        "media",
        "0006",
        [
            {
                "id": i + 1,
                "key": f"m{i}" + "0" * 30,
                "actor_id": 1,
                "media_type": "image/jpeg",
                "size": 120_000 + i,
                "sha256": f"{i:064x}",
                "width": 1200,
                "height": 800,
                "description": f"Photo {i}",
                "created_at": at(20 + i),
            }
            for i in range(2)
        ],
    ),
    Rows(
        "backfills",
        "0006",
        [
            {
                "id": 1,
                "actor_id": 1,
                "followed": f"{PEER}/actors/coop",
                "collection": f"{PEER}/actors/coop/outbox",
                "next_page": None,
                "pages": 3,
                "imported": 4,
                "total": 4,
                "state": "done",
                "last_error": None,
                "started_at": at(4.5),
                "updated_at": at(4.6),
            }
        ],
    ),
    Rows(
        "colleges",
        "0007",
        [
            {"id": 1, "name": "producers", "weight_bp": 6_667, "created_at": at(25)},
            {"id": 2, "name": "consumers", "weight_bp": 3_333, "created_at": at(25)},
        ],
    ),
    Rows(
        "members",
        "0007",
        [
            {
                "id": i + 1,
                "actor_id": actor_id,
                "actor_uri": uri,
                "handle": handle,
                "local": int(actor_id is not None),
                "role": role,
                "college": college,
                "joined_at": at(26 + i),
                "left_at": at(60) if state == "left" else None,
                "state": "confirmed" if state == "left" else state,
                "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
                if actor_id
                else None,
                "created_at": at(26 + i),
            }
            for i, (actor_id, uri, handle, role, college, state) in enumerate(
                [
                    (2, VOTERS[0], "alice@coop.example", "admin", "producers", "confirmed"),
                    (None, VOTERS[1], "bob@peer.example", "member", "consumers", "confirmed"),
                    (None, VOTERS[2], "carol@coop.example", "member", "producers", "left"),
                    (None, f"{PEER}/actors/dan", "dan@peer.example", "observer", None, "pending"),
                ]
            )
        ],
    ),
    Rows(
        "proposals",
        "0008",
        [_proposal(1, "press", "closed", 40), _proposal(2, "roof", "open", 500)],
        later={"mirror": "0009"},
    ),
    Rows(
        "proposal_voters",
        "0008",
        [
            {
                "proposal_id": p,
                "voter": VOTERS[v],
                "college": "consumers" if v == 1 else "producers",
            }
            for p in (1, 2)
            for v in range(3)
        ],
        later={"coop": "0009"},
    ),
    Rows(
        "ballots",
        "0008",
        [
            _ballot(1, 1, 0, "Yes", 31),
            _ballot(2, 1, 1, "No", 32),
            _ballot(3, 1, 2, "Yes", 33),
            _ballot(4, 2, 0, "No", 34),
            _ballot(5, 2, 0, "Yes", 35),  # changed her mind
        ],
    ),
    Rows(
        "subtotals",
        "0009",
        [
            {
                "id": 1,
                "proposal_id": 2,
                "coop": f"{PEER}/actors/coop",
                "document": _json({"type": "Note", "voters": 5}),
                "voters": 5,
                "published": at(36),
                "received_at": at(36),
            }
        ],
    ),
    Rows(
        "proposal_coops",
        "0009",
        [
            {
                "proposal_id": 2,
                "coop": f"{PEER}/actors/coop",
                "inbox": f"{PEER}/inbox",
                "state": "accepted",
                "roster_size": 5,
                "reason": None,
                "updated_at": at(30),
            }
        ],
    ),
    Rows(
        "remote_proposals",
        "0009",
        [
            {
                "id": 1,
                "key": "peer-well",
                "uri": f"{PEER}/proposals/well",
                "host": "peer.example",
                "document": _json({"id": f"{PEER}/proposals/well", "type": "Question"}),
                "state": "open",
                "received_at": at(37),
                "updated_at": at(37),
            }
        ],
    ),
    Rows(
        "sent_ballots",
        "0009",
        [
            {
                "id": 1,
                "proposal_id": 1,
                "actor_id": 2,
                "choices": _json(["Dig"]),
                "activity_id": f"{BASE}/actors/alice/votes/well-1",
                "sent_at": at(38),
            }
        ],
    ),
    Rows(
        "web_sessions",
        "0010",
        [
            {
                "id": 1,
                "token_hash": "b" * 64,
                "member_id": 1,
                "csrf": "c" * 43,
                "created_at": at(45),
                "last_seen_at": at(46),
                "expires_at": at(500),
                "user_agent": "Firefox",
            }
        ],
    ),
    Rows(
        "signature_schemes",
        "0013",
        [
            {
                "id": 1,
                "host": "peer.example",
                "scheme": "rfc9421-ed25519",
                "confirmed": 1,
                "reason": "a delivery signed so was accepted",
                "decided_at": at(50),
                "expires_at": at(80),
            }
        ],
    ),
    Rows(
        "worker_heartbeats",
        "0015",
        [
            {
                "id": 1,
                "poller": "delivery",
                "hostname": "coop-1",
                "pid": 4242,
                "started_at": at(60),
                "beat_at": at(61),
                "rounds": 3,
            }
        ],
    ),
    Rows("doctor_probes", "0015", [{"id": 1, "nonce": "n" * 43, "expires_at": at(62)}]),
    Rows(
        "orders",
        "0016",
        [
            {
                "id": 1,
                "key": "k" * 22,
                "side": "seller",
                "state": "pending",
                "offer_uri": f"{BASE}/offers/o0",
                "offer_id": 1,
                "seller": f"{BASE}/actors/coop",
                "buyer": f"{PEER}/actors/coop",
                "member_id": None,
                "offer_activity": f"{PEER}/activities/offer-1",
                "agreement_uri": None,
                "quantity_e4": 60_000,
                "unit": "kilogram",
                "total_e4": 210_000,
                "currency": "EUR",
                "delivery": "pickup",
                "payment": "cash",
                "note": "Pour samedi.",
                "answer": "",
                "reason": None,
                "stock_held": 1,
                "created_at": at(63),
                "updated_at": at(63),
                "expires_at": at(65),
                "document": None,
            },
            {
                "id": 2,
                "key": "b" * 22,
                "side": "buyer",
                "state": "accepted",
                "offer_uri": f"{PEER}/offers/o{OFFERS}",
                "offer_id": OFFERS + 1,
                "seller": f"{PEER}/actors/coop",
                "buyer": f"{BASE}/actors/coop",
                "member_id": 1,
                "offer_activity": f"{BASE}/activities/offer-2",
                "agreement_uri": f"{PEER}/agreements/a2",
                "quantity_e4": 20_000,
                "unit": "kilogram",
                "total_e4": 118_000,
                "currency": "EUR",
                "delivery": None,
                "payment": None,
                "note": "",
                "answer": "À samedi.",
                "reason": None,
                "stock_held": 0,
                "created_at": at(63),
                "updated_at": at(64),
                "expires_at": None,
                "document": _json({"id": f"{PEER}/agreements/a2", "type": "Agreement"}),
            },
        ],
    ),
    Rows(
        "offer_stock",
        "0016",
        [
            {
                "offer_id": 1,
                "available_e4": 940_000,
                "policy": "auto",
                "changed_at": at(63),
                "announced_at": at(62),
            },
            {
                "offer_id": 2,
                "available_e4": None,
                "policy": "manual",
                "changed_at": None,
                "announced_at": None,
            },
        ],
    ),
    # The rows of a network hosted here (its actor is the co-op's in these rows: the
    # tables only tie it to an actor) and of one the co-op belongs to.
    Rows(
        "networks",
        "0018",
        [
            {
                "id": 1,
                "actor_id": 1,
                "charter": "Entraide.",
                "admission": "admin",
                "created_at": at(70),
            }
        ],
    ),
    Rows(
        "network_members",
        "0018",
        [
            {
                "id": 1,
                "network_id": 1,
                "actor": f"{PEER}/actors/coop",
                "host": "peer.example",
                "name": "Le Fournil",
                "inbox": f"{PEER}/actors/coop/inbox",
                "shared_inbox": f"{PEER}/inbox",
                "sector": "food",
                "region": "Bretagne",
                "state": "member",
                "join_id": f"{PEER}/activities/join-1",
                "reason": "",
                "applied_at": at(70),
                "since": at(71),
                "updated_at": at(71),
                "proposal": None,
                "offers_walk": None,
            }
        ],
    ),
    Rows(
        "network_offers",
        "0018",
        [
            {
                "id": 1,
                "member_id": 1,
                "uri": f"{PEER}/offers/o{OFFERS}",
                "name": "Pain",
                "updated_at": at(72),
            }
        ],
    ),
    Rows(
        "network_memberships",
        "0018",
        [
            {
                "id": 1,
                "network": f"{PEER}/actors/reseau",
                "host": "peer.example",
                "name": "Réseau",
                "inbox": f"{PEER}/actors/reseau/inbox",
                "state": "member",
                "join_id": f"{BASE}/activities/join-2",
                "sector": "food",
                "region": "Bretagne",
                "reason": "",
                "applied_at": at(70),
                "since": at(71),
                "updated_at": at(71),
            }
        ],
    ),
    Rows(
        "network_roster",
        "0018",
        [
            {
                "id": 1,
                "membership_id": 1,
                "actor": f"{PEER}/actors/coop",
                "name": "Le Fournil",
                "sector": "food",
                "region": "Bretagne",
                "since": at(71),
            }
        ],
    ),
    # Alice's address (verified, French), her preferences, a sent message, a digest
    # item waiting, and one told event.
    Rows(
        "mail_recipients",
        "0019",
        [
            {
                "member_id": 1,
                "address": "alice@mail.example",
                "language": "fr",
                "verified_at": at(73),
                "verify_hash": None,
                "verify_expires": None,
                "secret": "s" * 43,
                "digest_sent_at": at(74),
                "created_at": at(72),
                "updated_at": at(73),
            }
        ],
    ),
    Rows(
        "mail_preferences",
        "0019",
        [
            {"member_id": 1, "kind": "proposal_opened", "frequency": "daily"},
            {"member_id": 1, "kind": "proposal_outcome", "frequency": "never"},
        ],
    ),
    Rows(
        "mail_outbox",
        "0019",
        [
            {
                "id": 1,
                "member_id": 1,
                "address": "alice@mail.example",
                "kind": "proposal_opened",
                "language": "fr",
                "params": _json({"title": "Ouvrir un second point de retrait"}),
                "dedupe": "proposal_opened 1 https://coop.example/proposals/p1",
                "message_id": "<m1@coop.example>",
                "state": "sent",
                "attempts": 1,
                "next_attempt_at": at(74),
                "last_error": None,
                "created_at": at(74),
                "sent_at": at(74),
            }
        ],
    ),
    Rows(
        "mail_digest_items",
        "0019",
        [
            {
                "id": 1,
                "member_id": 1,
                "kind": "proposal_reminder",
                "params": _json({"title": "Ouvrir un second point de retrait"}),
                "dedupe": "proposal_reminder 1 https://coop.example/proposals/p1",
                "created_at": at(75),
            }
        ],
    ),
    Rows(
        "mail_events",
        "0019",
        [
            {
                "kind": "proposal_opened",
                "subject": f"{BASE}/proposals/p1",
                "created_at": at(74),
            }
        ],
    ),
    # A member's comment under a proposal, one from Mastodon answering it, and a report.
    Rows(
        "comments",
        "0020",
        [
            {
                "id": 1,
                "key": "c" * 22,
                "uri": f"{BASE}/comments/{'c' * 22}",
                "thread": f"{BASE}/proposals/p1",
                "in_reply_to": f"{BASE}/proposals/p1",
                "author": VOTERS[0],
                "author_name": "Alice",
                "author_host": "coop.example",
                "actor_id": 2,
                "content": "<p>Pourquoi samedi ?</p>",
                "source": "Pourquoi samedi ?",
                "state": "visible",
                "published": at(76),
                "updated": at(76),
                "received_at": at(76),
            },
            {
                "id": 2,
                "key": "d" * 22,
                "uri": f"{PEER}/users/bob/statuses/1",
                "thread": f"{BASE}/proposals/p1",
                "in_reply_to": f"{BASE}/comments/{'c' * 22}",
                "author": f"{PEER}/users/bob",
                "author_name": "Bob",
                "author_host": "peer.example",
                "actor_id": None,
                "content": "<p>Parce que le marché.</p>",
                "source": None,
                "state": "hidden",
                "published": at(77),
                "updated": at(77),
                "received_at": at(77),
            },
        ],
    ),
    Rows(
        "comment_reports",
        "0020",
        [
            {
                "id": 1,
                "comment_id": 2,
                "reporter": f"{PEER}/actor",
                "origin": "flag",
                "reason": "Spam",
                "activity_id": f"{PEER}/flags/1",
                "state": "open",
                "created_at": at(78),
            }
        ],
    ),
]


def _typed(name: str, value: object) -> sa.ColumnClause[Any]:
    if isinstance(value, datetime):
        return sa.column(name, UtcDateTime())
    if isinstance(value, bytes):
        return sa.column(name, sa.LargeBinary())
    return sa.column(name)


def seed(conn: Connection, revision: str) -> dict[str, int]:
    """Insert the rows of every table ``revision`` has, as its code wrote them; the
    number of rows per table."""
    counts: dict[str, int] = {}
    for rows in TABLES:
        if rows.since > revision:
            continue
        written = rows.written_at(revision)
        first = written[0]
        table = sa.table(rows.table, *(_typed(k, v) for k, v in first.items()))
        conn.execute(sa.insert(table), written)
        counts[rows.table] = len(written)
    if conn.dialect.name == "postgresql":
        # Rows came with their ids: move each sequence past them, as the code's own
        # inserts would have.
        for rows in TABLES:
            if rows.table in counts and "id" in rows.rows[0]:
                # The table names are this module's own constants.
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{rows.table}', 'id'), MAX(id)) "  # noqa: S608
                    f"FROM {rows.table}"
                )
    return counts


def expected(revision: str) -> dict[str, list[dict[str, Any]]]:
    """What each table seeded at ``revision`` must read as after the upgrade: the rows
    as written, with each column added since then null."""
    return {
        rows.table: [rows.upgraded(row, revision) for row in rows.rows]
        for rows in TABLES
        if rows.since <= revision
    }
