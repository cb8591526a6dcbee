"""``coopnode demo``: three federated co-ops on loopback, in one process.

A fair-trade marketplace, a local food network and a multi-stakeholder tourism co-op
(with colleges), each a local node with its own database, on ports PORT, PORT+1 and
PORT+2. Each is seeded with members who log in with the passwords printed, and with
offers in French and English. The tourism co-op follows only the marketplace; all three
belong to the network *Plateformes en communs*, hosted by the marketplace, which brings
each the others' offers, so that every catalogue holds the three co-ops' offers. A
fourth co-op, *Gîtes en commun* (PORT+3), has applied to the network and waits for the
marketplace's admin. They then order from each other: a member of the
tourism co-op orders honey from the marketplace (accepted, then fulfilled), the
marketplace orders vegetables from the food network (accepted) and eggs, left waiting
for the food network's admin. The food network has a proposal of its own open for
voting, and the tourism co-op hosts a proposal shared with the other two.

Everything runs until SIGINT (Ctrl-C) or SIGTERM, then the servers and their workers
stop, and a temporary data directory is deleted.

The output is meant to be read by people and by scripts alike: one line per node
(``node HANDLE URL @HANDLE@DOMAIN NAME``), one per login (``login HANDLE ROLE USERNAME
PASSWORD NAME``), one per order (``order SELLER STATE BUYER MEMBER QUANTITY OFFER``), one
per proposal (``proposal HANDLE KIND URL TITLE``), and a last line saying that Ctrl-C
stops the demo.

- ``coops.toml``: the co-ops, their members and offers, the proposals and the orders,
  as data; :mod:`node.demo.coops` reads and checks it.
- :mod:`node.demo.nodes`: the ports, the data directory, each node and its server.
- :mod:`node.demo.seeding`: members, offers, follows, orders and proposals put into the
  nodes.
- :mod:`node.demo.runner`: :func:`~node.demo.runner.run`, from start to Ctrl-C.
"""
