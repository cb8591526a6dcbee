"""Offers: a co-op's listings, from the member's form to the FEP-0837 ``Proposal`` on
the wire and back.

The model, its validation and the wire forms are pure (``model``, ``validation``,
``wire``, ``remote``, ``normalise``); the modules beside them store, publish and take
in peers' offers.
"""
