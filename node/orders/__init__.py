"""Trade between co-ops: a member orders from another co-op's offer, the seller's node
checks the order against the offer and holds the stock, and the seller accepts or
rejects it (FEP-0837: an ``Offer`` of an ``Agreement``, answered by ``Accept`` or
``Reject``). :mod:`.model` holds the plain values, :mod:`.rules` the seller's checks,
:mod:`.wire` what goes on the wire, :mod:`.store` the orders and the stock."""
