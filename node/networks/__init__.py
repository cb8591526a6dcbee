"""Networks of co-ops: a ``Group`` actor that co-ops join, which relays its members'
offers and proposals to every member and publishes their directory.

Two sides live here. A node may *host* networks (:mod:`.hosting`: create one, take
applications, approve, refuse or remove members, relay what members publish); and the
co-op may *belong* to networks, here or elsewhere (:mod:`.joining`: apply, leave, keep
each network's roster, take what it relays into the catalogue). What goes on the wire
is :mod:`.wire`'s; the tables are queried in :mod:`.store` alone.
"""
