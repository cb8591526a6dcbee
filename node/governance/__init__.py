"""Governance: proposals, their ballots and tallies, proposals shared between co-ops,
college subtotals, and the audit that re-checks a published result.

``rules`` is the pure part (the tally, digests, reading input); the modules beside it
store, publish and receive.
"""
