"""The inbox compares origins, port included: a server on another port of a peer's
host name is another server, and speaks only for its own objects."""

from __future__ import annotations

from sqlalchemy import func, select

from node.storage.tables import inbox_activities
from tests.support.coops import deliver_as_coop
from tests.support.network import Network


async def test_an_activity_id_on_another_port_of_the_actors_host_is_refused(
    network: Network,
) -> None:
    receiver = await network.add("food.test")
    await network.add("tourism.test")
    neighbour = await network.add("tourism.test:8443")
    note = {"id": "https://tourism.test:8443/notes/1", "type": "Note", "content": "hello"}

    spoofed = await deliver_as_coop(
        network, neighbour, note, "https://tourism.test/activities/1", "https://food.test/inbox"
    )
    assert spoofed.status_code == 400
    assert "is not on its actor's server" in spoofed.json()["reason"]
    own = await deliver_as_coop(
        network,
        neighbour,
        note,
        "https://tourism.test:8443/activities/1",
        "https://food.test/inbox",
    )
    assert own.status_code == 202
    stored = await receiver.node.db.read(
        lambda conn: conn.execute(select(func.count()).select_from(inbox_activities)).scalar_one()
    )
    assert stored == 1
