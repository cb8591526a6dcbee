"""How the node talks to other servers: every fetch signed by the co-op, and the cache
of remote actors and their keys.

An actor document is stored (``remote_actors``) when the node fetched it for a trusted
reason: the admin asked, or an actor whose signature verified is being answered. One
fetched only to check a signature waits in memory (:mod:`node.inbox.unverified_actors`) until
a signature made with its key verifies, so that bad signatures from made-up actors
cost no storage."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial
from typing import Any

import httpx

from federation import httpsig, keys, webfinger
from federation.clock import Clock
from federation.errors import InvalidDocument, Refused
from federation.fetch import fetch_json, resolve_handle
from federation.inbox import host_of
from federation.keycache import KeyCache
from federation.poster import InboxSigner, Rfc9421Signer
from federation.schemes import Scheme
from node.inbox.unverified_actors import UnverifiedActors
from node.services import domains, identity, remote_actors
from node.services.domains import DomainPolicy
from node.settings import Settings
from node.storage.database import Database
from node.urls import Urls

log = logging.getLogger(__name__)

# A stored actor document is used for keys without a new fetch for this long; a failed
# verification fetches it again sooner (KeyCache.refetch), which is how rotation works.
ACTOR_FRESHNESS = timedelta(days=1)


class Peers:
    """The node's signed fetcher and its key cache."""

    def __init__(
        self, settings: Settings, db: Database, http: httpx.AsyncClient, clock: Clock
    ) -> None:
        self.settings = settings
        self.db = db
        self.http = http
        self.clock = clock
        coop, generation = db.read_sync(
            lambda conn: (
                identity.get_actor(conn, settings.handle),
                identity.key_generation(conn),
            )
        )
        self.coop_id = coop.actor.id
        self._load_coop_signers(coop.rsa_private_pem)
        self.key_generation = generation
        self.keys = KeyCache(self._key_document, clock)
        self.unverified = UnverifiedActors(clock)
        self._member_signers: dict[tuple[int, bool], InboxSigner | Rfc9421Signer] = {}
        # Signers being loaded: the sends that want one meanwhile wait for that load.
        self._loading_signers: dict[
            tuple[int, bool], asyncio.Future[InboxSigner | Rfc9421Signer]
        ] = {}
        # The admin's domain decisions, reloaded every few seconds (DOMAINS_POLLER).
        allow_list = settings.federation == "allowlist"
        self.policy: DomainPolicy = db.read_sync(
            lambda conn: domains.load_policy(conn, allow_list_mode=allow_list)
        )

    def _load_coop_signers(self, rsa_private_pem: bytes | None) -> None:
        assert rsa_private_pem is not None
        key_id = Urls(self.settings.base_url).actor_key(self.settings.handle)
        private_key = keys.load_own_private_key(rsa_private_pem)
        # Authorized-fetch servers (Mastodon's secure mode, GoToSocial) answer only
        # signed GETs: every fetch is signed with the co-op's key.
        self.signer = httpsig.SignatureAuth(
            key_id=key_id, private_key=private_key, clock=self.clock
        )
        # The same key signs the co-op's deliveries (see node.delivery.worker).
        self.inbox_signer = InboxSigner(key_id=key_id, private_key=private_key, clock=self.clock)

    async def refresh_keys(self) -> bool:
        """Load the signers again if a local actor's keys changed since they were loaded
        (``coopnode keys rotate``, from this process or another): one cheap query, made
        at the start of each delivery round and every few seconds. Returns whether
        they changed."""
        handle = self.settings.handle

        def changed(conn: Any) -> tuple[int, bytes | None] | None:
            generation = identity.key_generation(conn)
            if generation == self.key_generation:
                return None
            return generation, identity.get_actor(conn, handle).rsa_private_pem

        found = await self.db.read(changed)
        if found is None:
            return False
        generation, rsa_pem = found
        self._load_coop_signers(rsa_pem)
        self._member_signers.clear()
        self._loading_signers.clear()  # loads under way finish with the old keys, uncached
        self.key_generation = generation
        log.info("keys changed (generation %d): signers loaded again", generation)
        return True

    async def member_signer(self, actor_pk: int, scheme: Scheme) -> InboxSigner | Rfc9421Signer:
        """The signer of a local actor's deliveries under ``scheme`` (see
        :mod:`federation.schemes`, and the delivery worker, which chooses it per host),
        cached for the process: a member's, or the co-op's own when RFC 9421 is chosen.

        RFC 9421 signs with the actor's Ed25519 key, which every actor has from the
        start; draft-cavage with its RSA key, made now for a member who had none (50 to
        100 ms), as Mastodon verifies only RSA. An actor without an Ed25519 key signs
        draft-cavage whatever ``scheme`` says.

        A round starts dozens of sends at once: the first loads the signer, the others
        wait for it, rather than each reading the keys (some 40 loads at a round's start,
        before)."""
        modern = scheme is Scheme.RFC9421_ED25519
        signer = self._member_signers.get((actor_pk, modern))
        if signer is not None:
            return signer
        key = (actor_pk, modern)
        loading = self._loading_signers.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load_member_signer(actor_pk, modern))
            self._loading_signers[key] = loading
            loading.add_done_callback(partial(self._loaded_signer, key))
        # One caller cancelled does not cancel the load the others wait for.
        return await asyncio.shield(loading)

    def _loaded_signer(
        self, key: tuple[int, bool], loading: asyncio.Future[InboxSigner | Rfc9421Signer]
    ) -> None:
        if self._loading_signers.get(key) is loading:
            del self._loading_signers[key]
        if not loading.cancelled():
            loading.exception()  # retrieved, even if every caller was cancelled meanwhile

    async def _load_member_signer(self, actor_pk: int, modern: bool) -> InboxSigner | Rfc9421Signer:
        signer: InboxSigner | Rfc9421Signer | None = None
        urls = Urls(self.settings.base_url)
        # A signer loaded while the keys changed is used once, not cached.
        generation = self.key_generation
        if modern:

            def load_ed25519(conn: Any) -> tuple[str, bytes | None]:
                username = identity.username_of(conn, actor_pk)
                return username, identity.get_actor(conn, username).ed25519_private_pem

            username, ed_pem = await self.db.read(load_ed25519)
            if ed_pem is not None:
                signer = Rfc9421Signer(
                    urls.actor_multikey(username), keys.load_own_private_key(ed_pem), self.clock
                )
        if signer is None:
            now = self.clock.now()

            def load(conn: Any) -> tuple[str, bytes]:
                username = identity.username_of(conn, actor_pk)
                return username, identity.ensure_rsa_key(conn, actor_pk, now=now)

            username, pem = await self.db.write(load)
            signer = InboxSigner(
                urls.actor_key(username), keys.load_own_private_key(pem), self.clock
            )
        if generation != self.key_generation:
            return signer
        if len(self._member_signers) > 10_000:
            self._member_signers.clear()
        self._member_signers[(actor_pk, modern)] = signer
        return signer

    async def fetch(self, url: str) -> dict[str, Any]:
        """A signed, guarded GET of an ActivityStreams document. A domain the policy
        refuses is never fetched."""
        self.ensure_allowed(url)
        return await fetch_json(
            self.http,
            url,
            auth=self.signer,
            allow_http=self.settings.local,
            refusal=self.refusal,
        )

    def refusal(self, host: str) -> str | None:
        """Why the admin's policy refuses ``host``, or None; read at each call, as the
        policy is reloaded while the node runs."""
        return self.policy.refusal(host)

    def ensure_allowed(self, url: str) -> None:
        """Raise :class:`Refused` for a URL on a domain the admin's policy refuses."""
        refusal = self.policy.refusal(host_of(url))
        if refusal is not None:
            raise Refused(refusal)

    async def actor(self, uri: str) -> dict[str, Any]:
        """An actor's document: the stored copy while fresh, else fetched and stored.

        For trusted callers only: the admin's requests, and answers to an actor whose
        signature verified."""
        document = await self._stored(uri)
        if document is not None:
            return document
        document = self.unverified.take(uri) or await self.fetch(uri)
        if not remote_actors.is_actor_document(document) or document.get("id") != uri:
            raise InvalidDocument(f"{uri} is not an actor")
        await self._store(document)
        return document

    async def resolve(self, target: str) -> dict[str, Any]:
        """The actor behind a handle (``user@host``, ``@user@host``, ``acct:``) or a URL."""
        if target.startswith(("https://", "http://")):
            # Before the stored copy: a domain no longer allowed is not answered from it.
            self.ensure_allowed(target)
            return await self.actor(target)
        _, host = webfinger.parse_acct(target, strict=False)
        self.ensure_allowed(f"https://{host}/")
        document = await resolve_handle(
            self.http, target, scheme=self.settings.scheme, auth=self.signer, refusal=self.refusal
        )
        await self._store(document)
        return document

    async def key_verified(self, key_id: str) -> None:
        """A signature made with ``key_id`` verified: the document its key came from, if
        it waits in memory, is now worth storing."""
        key = self.keys.cached(key_id)
        document = None if key is None else self.unverified.take(key.owner)
        if document is not None:
            await self._store(document)

    async def _key_document(self, url: str, fresh: bool) -> dict[str, Any]:
        """A document the key cache asked for: stored or held copies while fresh, else
        fetched and held (not stored: no signature has verified with it yet)."""
        if not fresh:
            document = await self._stored(url) or self.unverified.get(url)
            if document is not None:
                return document
        document = await self.fetch(url)
        if remote_actors.is_actor_document(document):
            self.unverified.hold(document)
        return document

    async def _stored(self, uri: str) -> dict[str, Any] | None:
        found = await self.db.read(lambda conn: remote_actors.find(conn, uri))
        if found is not None and self.clock.now() - found[1] < ACTOR_FRESHNESS:
            return found[0]
        return None

    async def _store(self, document: dict[str, Any]) -> None:
        now = self.clock.now()
        await self.db.write(lambda conn: remote_actors.store(conn, document, now=now))

    async def known_actor(self, actor: str) -> bool:
        if self.keys.knows_actor(actor):
            return True
        return await self.db.read(lambda conn: remote_actors.exists(conn, actor))
