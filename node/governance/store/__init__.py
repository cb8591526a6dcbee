"""Governance's storage: every query on its tables (proposals and their electorates,
ballots, the co-ops of a shared proposal, their subtotals, the shared proposals other
co-ops host and the ballots members sent there), and the typed rows they return.

``rows`` reads what a row stores (JSON settings, counts, outcomes) into plain values;
nothing outside this package parses a stored column. ``tally`` counts the ballots in
the database.
"""
