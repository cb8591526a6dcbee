"""``coopnode doctor``: what is right and what is wrong with a node's setup, in plain
words. :mod:`.findings` holds the verdicts (pure), :mod:`.local` the checks on this
machine (schema, disk, permissions, workers, queues, peers), :mod:`.public` those made
through the public URL (TLS, WebFinger, the actor, the proxy), :mod:`.clock` the clock
against peers', and :mod:`.run` puts them together."""
