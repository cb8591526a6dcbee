"""Walking the collections (node.governance.audit.walk): pages on another host, or not
part of the collection, are refused."""

from __future__ import annotations

from tests.node.governance.audit.host import DocumentServer, cli, honest


def test_a_page_on_another_host_is_refused(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    collection = server.documents[f"/proposals/{scenario.key}/ballots"]
    assert isinstance(collection, dict)
    collection["first"] = collection["first"].replace("127.0.0.1", "localhost")

    run = cli(url)

    assert run.exit_code == 2
    assert "another host" in run.stderr


def test_a_page_that_is_not_part_of_the_collection_is_refused(server: DocumentServer) -> None:
    scenario = honest(server)
    url = scenario.publish(server)
    page = server.documents[f"/proposals/{scenario.key}/ballots?page=1"]
    assert isinstance(page, dict)
    page["partOf"] = f"{server.base}/proposals/other/ballots"

    run = cli(url)

    assert run.exit_code == 2
    assert "is part of" in run.stderr
