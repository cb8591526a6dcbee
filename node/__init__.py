"""coopnode: a co-operative's own ActivityPub node."""

__version__ = "0.1.0"
