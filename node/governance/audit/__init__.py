"""``coopnode audit``: recompute a closed proposal's result from what its host publishes.

A co-op's members should not have to trust the host's count. Once a proposal is closed,
its host publishes everything the count used: the settings (the ``Question``), the
electorate as of the opening (with a digest in ``rosterSnapshot``), and every ballot
with the Notes the voter sent, signed by the voter's own node where it is a coopnode
(FEP-8b32 ``eddsa-jcs-2022`` proofs). Anyone can then:

1. read the settings into the same :class:`~node.governance.rules.tally.Proposal` the
   host used (:mod:`.read`);
2. walk the electorate and ballots collections, refusing pages that are not the
   collection's or that live on another host (:mod:`.walk`);
3. check each ballot against its Notes, and each Note's proof against the key that the
   voter's own actor document publishes (:mod:`.verify`);
4. recount with :func:`~node.governance.rules.tally.tally`, the very function the host
   ran, and compare every published figure and every ballot's published status with the
   recount (:mod:`.ballots`, :mod:`.compare`).

A shared proposal counted by subtotals publishes no ballots: its audit
(:mod:`.subtotals`) verifies each co-op's signed subtotal instead.

:func:`.run.audit` is the way in; :mod:`.report` holds what it finds and :mod:`.render`
prints it. Every document is fetched through the federation library with the caller's
HTTP client and its address guard (:mod:`.fetch`). Nothing here trusts the host's
documents: every field is checked before use (:mod:`.fields`), and a bad one is a clear
:class:`~.fields.AuditError` naming it, never a traceback.
"""
