"""The federated catalogue: every offer the node knows (its own and those of the co-ops
it follows), kept current and searchable."""
