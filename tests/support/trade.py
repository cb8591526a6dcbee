"""What trade tests share: the marketplace's honey offer, published through the API."""

from __future__ import annotations

from typing import Any

from tests.support.network import TestNode


def honey(**changes: Any) -> dict[str, Any]:
    """Lavender honey in jars: 40 left, at least 2 an order, picked up or posted, paid
    in cash or by transfer."""
    data: dict[str, Any] = {
        "title": {"fr": "Miel de lavande", "en": "Lavender honey"},
        "categories": ["honey"],
        "price": {"amount": "8.50", "currency": "EUR"},
        "unit": "piece",
        "quantity": {"available": "40", "minimum": "2"},
        "delivery_options": ["pickup", "postal_shipping"],
        "payment_options": ["cash", "bank_transfer"],
    }
    data.update(changes)
    return data


async def publish(node: TestNode, data: dict[str, Any]) -> dict[str, Any]:
    response = await node.request("POST", "/api/v1/offers", json=data, headers=node.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())
