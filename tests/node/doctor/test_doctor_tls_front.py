"""``coopnode doctor`` behind Caddy run from deploy/Caddyfile, over real TLS: a front
set up as deploy/ says is all well; a certificate this machine does not trust, a proxy
that rewrites the Host, drops X-Forwarded-Proto or takes bodies smaller than the node's
(``10MB``, the mistake deploy/ once made), and a proxy the node does not trust, are
each found and explained."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ServeProcess, free_port, run_coopnode, start_serve
from tests.support.tls_front import (
    Certificates,
    Front,
    caddy,
    caddyfile,
    make_certificates,
    start_caddy,
)

if caddy() is None:
    if os.environ.get("CI") == "true":
        pytest.fail("caddy is not installed (apt-get install caddy)", pytrace=False)
    pytest.skip("caddy is not installed (apt-get install caddy)", allow_module_level=True)


class Site:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.domain = f"localhost:{self.port}"
        self.certificates: Certificates = make_certificates(root / "certificates")
        self.data_dir = root / "node"
        done = run_coopnode(
            "init",
            "--domain",
            self.domain,
            "--name",
            "Front co-op",
            "--data-dir",
            str(self.data_dir),
        )
        assert done.returncode == 0, done.stderr
        self.node: ServeProcess | None = None
        self.front: Front | None = None

    def serve(self, env: dict[str, str] | None = None) -> None:
        self.node = start_serve(self.data_dir, env=env)
        self.node.wait_ready()

    @property
    def node_port(self) -> int:
        assert self.node is not None
        return self.node.port

    def put_front(self, replace: dict[str, str] | None = None, proxy_options: str = "") -> None:
        config = caddyfile(
            site=self.domain,
            upstream=f"127.0.0.1:{self.node_port}",
            certificates=self.certificates,
            replace=replace,
            proxy_options=proxy_options,
        )
        self.front = start_caddy(self.root / "caddy", config, self.port)

    def doctor(self, *, trusted: bool = True) -> tuple[int, dict[str, dict[str, str]]]:
        env = {"SSL_CERT_FILE": str(self.certificates.ca)} if trusted else {}
        done = run_coopnode("doctor", "--json", "--data-dir", str(self.data_dir), env=env)
        report = json.loads(done.stdout)
        return done.returncode, {f["check"]: f for f in report["findings"]}

    def close(self) -> None:
        if self.front is not None:
            self.front.stop()
        if self.node is not None:
            self.node.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    made = Site(tmp_path)
    try:
        yield made
    finally:
        made.close()


PUBLIC = ("tls", "webfinger", "actor", "proxy", "proxy host", "proxy https", "body limit")


def test_behind_the_deploy_caddyfile_all_is_well(site: Site) -> None:
    site.serve()
    site.put_front()

    code, found = site.doctor()

    assert code == 0, found
    assert {check: found[check]["level"] for check in PUBLIC} == dict.fromkeys(PUBLIC, "ok")
    assert "a certificate this machine trusts" in found["tls"]["summary"]
    assert "from coopnode test CA" in found["tls"]["summary"]
    assert found["webfinger"]["summary"] == (
        f"acct:coop@{site.domain} is found through https://{site.domain}"
    )


def test_a_certificate_this_machine_does_not_trust_is_a_problem(site: Site) -> None:
    site.serve()
    site.put_front()

    code, found = site.doctor(trusted=False)

    assert code == 1
    assert found["tls"]["level"] == "problem"
    assert "does not trust the certificate of localhost" in found["tls"]["summary"]
    # The rest is still read, without trusting the certificate.
    assert found["actor"]["level"] == "ok"
    assert found["body limit"]["level"] == "ok"


def test_a_misconfigured_front_is_explained_point_by_point(site: Site) -> None:
    site.serve()
    site.put_front(
        {"max_size 11MiB": "max_size 10MB"},
        proxy_options="\t\theader_up Host {upstream_hostport}\n\t\theader_up -X-Forwarded-Proto",
    )

    code, found = site.doctor()

    assert code == 1
    assert found["tls"]["level"] == "ok"
    # It still reaches this very node: the probe is known.
    assert found["proxy"]["level"] == "ok"
    host = found["proxy host"]
    assert host["level"] == "problem"
    assert f"changes the Host header to '127.0.0.1:{site.node_port}'" in host["summary"]
    assert "header_up Host" in host["advice"]
    https = found["proxy https"]
    assert https["level"] == "problem"
    assert "no X-Forwarded-Proto" in https["summary"]
    body = found["body limit"]
    assert body["level"] == "problem"
    assert "10551296 bytes" in body["summary"]
    assert "(from Caddy)" in body["summary"]
    assert "max_size 11MiB" in body["advice"]


def test_a_proxy_the_node_does_not_trust_is_named(site: Site) -> None:
    # The node believes X-Forwarded-Proto from another address than its proxy's.
    site.serve(env={"COOPNODE_TRUSTED_PROXIES": "10.9.9.9"})
    site.put_front()

    code, found = site.doctor()

    assert code == 1
    https = found["proxy https"]
    assert https["level"] == "problem"
    assert "does not believe the proxy's X-Forwarded-Proto (https)" in https["summary"]
    assert "connects from 127.0.0.1" in https["summary"]
    assert "trusted_proxies" in https["advice"]
