"""Language tags as the node accepts them (a BCP 47 subset): a primary language of two
or three lowercase letters and up to three subtags (``fr``, ``pt-BR``, ``es-419``).
Offers and proposals name their language with one; ``contentMap`` is keyed by it."""

from __future__ import annotations

import re

LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,3}$")
