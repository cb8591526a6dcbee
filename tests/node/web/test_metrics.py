"""``/metrics``: Prometheus' text format, counted from real traffic (a proposal delivered
to members on another server, a local and a remote ballot, a refused signature), and
shown only to whom the settings allow."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from node.settings import SettingsError, load_settings
from tests.support.coops import make_coop
from tests.support.network import Network, TestNode
from tests.support.processes import start_serve

AS2 = "application/activity+json"
TOKEN = "s3cret-metrics-token-0123456789"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(node: TestNode) -> Samples:
    response = await node.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_real_traffic_is_counted(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=1, metrics="loopback")
    alpha = coop.node
    before = await scrape(alpha)

    created = await coop.propose("m0")
    await network.settle()  # the proposal is delivered to the remote member's server
    assert (await coop.vote("m0", created["id"], "For")).status_code == 201
    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "Against")
    await network.settle()
    r0 = coop.remote["r0"]
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{r0.actor}#unsigned",
        "type": "Create",
        "actor": r0.actor,
        "object": {"id": f"{r0.actor}/notes/1", "type": "Note", "content": "hi"},
    }
    unsigned = await network.http.post(
        alpha.base + "/inbox", content=json.dumps(activity), headers={"Content-Type": AS2}
    )
    assert unsigned.status_code == 401, unsigned.text
    after = await scrape(alpha)

    assert delta(before, after, "coopnode_votes_cast_total", origin="local") == 1
    assert delta(before, after, "coopnode_votes_cast_total", origin="remote") == 1
    assert delta(before, after, "coopnode_inbox_received_total") == 2
    assert delta(before, after, "coopnode_inbox_accepted_total", state="pending") == 1
    assert delta(before, after, "coopnode_inbox_refused_total", reason="NotAuthorized") == 1
    assert delta(before, after, "coopnode_inbox_handled_total", kind="vote", outcome="done") == 1
    delivered = delta(before, after, "coopnode_deliveries_total", outcome="delivered")
    assert delivered >= 1
    assert delta(before, after, "coopnode_delivery_seconds_count") == delivered
    assert delta(before, after, "coopnode_deliveries_total", outcome="retry") == 0
    votes = "/api/v1/proposals/{key}/votes"
    assert delta(before, after, "coopnode_request_seconds_count", route=votes) == 1
    inboxes = ("/inbox", "/actors/{username}/inbox")
    timed = [delta(before, after, "coopnode_request_seconds_count", route=r) for r in inboxes]
    assert sum(timed) == 2
    # The raw path is never a label value: only route templates are.
    routes = {dict(labels).get("route") for name, labels in after if "request" in name}
    assert not any(route and created["id"] in route for route in routes)
    # Read from the database at scrape time: everything was handled and delivered.
    assert after[("coopnode_inbox_pending", ())] == 0
    assert after[("coopnode_deliveries_due", ())] == 0
    assert after[("coopnode_failing_hosts", ())] == 0


async def test_queue_depths_and_failing_hosts_are_read_at_scrape_time(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=1, metrics="loopback")
    alpha = coop.node
    await coop.propose("m0")
    queued = await scrape(alpha)
    assert queued[("coopnode_deliveries_due", ())] >= 1

    del network.router.apps["mastodon.test"]  # the members' server goes away
    await network.settle()
    failing = await scrape(alpha)

    assert failing[("coopnode_deliveries_due", ())] == 0  # retried later, not due now
    assert failing[("coopnode_deliveries_pending", ())] == queued[("coopnode_deliveries_due", ())]
    assert failing[("coopnode_failing_hosts", ())] == 1


async def test_metrics_are_off_by_default(network: Network) -> None:
    node = await network.add("alpha.test")

    response = await node.get("/metrics")

    assert response.status_code == 404


async def test_loopback_mode_refuses_other_clients_and_proxied_requests(
    network: Network,
) -> None:
    node = await network.add("alpha.test", metrics="loopback")
    remote = httpx.ASGITransport(app=node.app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=remote) as outsider:
        from_outside = await outsider.get(node.base + "/metrics")
    # Through the reverse proxy on this machine, the client is the proxy's client.
    proxied = await node.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"})
    local = await node.get("/metrics")

    assert from_outside.status_code == 403
    assert proxied.status_code == 403
    assert local.status_code == 200
    assert "coopnode_inbox_received_total" in local.text


async def test_token_mode_wants_the_token_from_anyone(network: Network) -> None:
    node = await network.add("alpha.test", metrics="token", metrics_token=TOKEN)
    remote = httpx.ASGITransport(app=node.app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=remote) as outsider:
        right = await outsider.get(
            node.base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        wrong = await outsider.get(
            node.base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}
        )
        none = await outsider.get(node.base + "/metrics")

    assert right.status_code == 200
    assert (wrong.status_code, none.status_code) == (401, 401)
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    assert "coopnode" not in wrong.text


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"metrics": "public"}, "use one of off, loopback, token"),
        ({"metrics": "token"}, "metrics_token of at least 16"),
        ({"metrics": "token", "metrics_token": "short"}, "metrics_token of at least 16"),
    ],
)
def test_metrics_settings_are_checked(
    tmp_path: Path, values: dict[str, str], complaint: str
) -> None:
    (tmp_path / "coopnode.toml").write_text('domain = "coop.test"\nname = "Co-op"\n')
    environ = {f"COOPNODE_{key.upper()}": value for key, value in values.items()}

    with pytest.raises(SettingsError, match=complaint):
        load_settings(tmp_path, environ=environ)


def test_a_served_node_answers_a_scraper_on_loopback(tmp_path: Path) -> None:
    """``coopnode serve`` over a real socket, its settings from the environment."""
    served = start_serve(tmp_path / "node", env={"COOPNODE_METRICS": "loopback"})
    try:
        served.wait_ready()
        httpx.post(served.base + "/inbox", content=json.dumps({"type": "Follow"}), timeout=5)
        response = httpx.get(served.base + "/metrics", timeout=5)
    finally:
        served.stop()

    samples = parse(response.text)
    assert response.status_code == 200
    assert samples[("coopnode_inbox_received_total", ())] == 1
    refused = {k[1]: v for k, v in samples.items() if k[0] == "coopnode_inbox_refused_total"}
    assert sum(refused.values()) == 1
    assert samples[("coopnode_inbox_pending", ())] == 0
    assert ("process_resident_memory_bytes", ()) in samples
