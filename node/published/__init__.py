"""What a local actor published for everyone: the items of its outbox, newest first
(``store`` finds them, ``pages`` renders a page).

The outbox lists one ``Create`` per object the actor published to the public and that
is still public now: an offer's ``Proposal`` and its readable ``Note``, a proposal's
``Question``, the ``Note`` that gives a closed proposal's outcome. That is the shape
Mastodon serves (``Create`` and ``Announce`` only, ``totalItems`` read as the post
count) and the one servers that backfill from outboxes expect; it leaves out

- ``Update``: the ``Create`` embeds the object as it is now, so an ``Update`` would
  add nothing but noise (an open proposal publishes new counts every minute) and would
  inflate the count Mastodon shows as posts;
- ``Delete``: a withdrawn offer's ``Create`` goes with it, so the outbox never
  republishes what the co-op took back (the id still answers ``410`` with a
  ``Tombstone`` for those who knew it);
- anything not addressed to the public (follows and their answers, ballots, subtotals,
  replies to one voter, the answer to an invitation) and any ``Create`` whose object
  is no longer served (a withdrawn offer, an outcome not yet published).

Each item is the ``Create`` as it was delivered (its id, addressing) with the object as
its own id serves it today, so a reader never takes a stale price or count from a page.

An item's position is its row in ``outbox_activities``: pages are cut by row id
(``max_id``/``min_id``, as Mastodon and GoToSocial do), so that activities published or
withdrawn during a walk shift nothing. The size and the pages apply one rule, written
once (:func:`node.published.store.sources`): the object's id, read from the stored
activity, is the id of an object served now. The body is JSON text that PostgreSQL
takes tens of microseconds to parse, so neither reads every body: the size looks each
object served now up in an index on that id (``ix_outbox_activities_object``), and a
page walks the actor's public ``Create`` rows by id (``ix_outbox_activities_public``)
and reads only the bodies it needs.
"""
