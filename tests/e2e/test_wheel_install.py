"""coopnode installed from its wheel, as an admin installs it: the wheel is built from a
copy of the sources, installed into a new virtual environment outside the checkout, and
``coopnode init`` and ``coopnode serve`` run from a directory that is not the checkout.
The node then serves documents that need every kind of data file the package carries:
migrations (the database), templates and translations (a page in French), contexts,
static files, categories (an offer) and its actor."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT, ServeProcess, free_port, watched

pytestmark = pytest.mark.e2e

# What the wheel is built from: what pyproject.toml names, and no more.
SOURCES = ("node", "federation", "schemas", "pyproject.toml", "README.md")
ACTIVITY_JSON = "application/activity+json"
# Run by the installed interpreter: where the packages and the contexts are, and the
# data files the node's HTTP answers below do not read (the demo's, the offer schema).
WHERE = """
import json
import federation, node
from federation.resources import on_disk, schemas
from node.demo.coops import load_seed
from node.offers.remote import OFFER_SCHEMA_FILE

load_seed()
json.loads(OFFER_SCHEMA_FILE.read_text(encoding="utf-8"))
print(node.__file__, federation.__file__, on_disk(schemas() / "contexts"))
"""


def run(*command: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def outside_env() -> dict[str, str]:
    """This environment without what would make Python find the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return {**env, "PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1"}


def build_wheel(into: Path) -> Path:
    """Build the wheel from a copy of the sources (the link federation/schemas kept as a
    link), so that the checkout gets no build directory."""
    source = into / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    env = outside_env()
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        into,
        source,
        cwd=into,
        env=env,
    )
    (wheel,) = into.glob("coopnode-*.whl")
    return wheel


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A virtual environment outside the checkout with only the wheel (and its
    dependencies) installed; yields its bin directory."""
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    env = outside_env()
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path, env=env)
    return venv / "bin"


def start(bin_dir: Path, data_dir: Path, port: int, cwd: Path) -> ServeProcess:
    process = subprocess.Popen(
        [bin_dir / "coopnode", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=cwd,
        env=outside_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return watched(process, data_dir, port)


def test_the_installed_wheel_serves_every_kind_of_document(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "admin"
    elsewhere.mkdir()
    env = outside_env()
    where = run(installed / "python", "-c", WHERE, cwd=elsewhere, env=env).split()
    venv = installed.parent.resolve()
    assert len(where) == 3, where
    for line in where:
        assert Path(line).resolve().is_relative_to(venv), where
        assert not Path(line).resolve().is_relative_to(ROOT), where

    port = free_port()
    data_dir = tmp_path / "data"
    made = run(
        installed / "coopnode",
        "init",
        "--domain",
        f"127.0.0.1:{port}",
        "--name",
        "Installed co-op",
        "--handle",
        "market",
        "--data-dir",
        data_dir,
        cwd=elsewhere,
        env=env,
    )
    token = re.search(r"Admin API token \(shown once, keep it safe\): (cn_\S+)", made)
    assert token, made
    node = start(installed, data_dir, port, elsewhere)
    try:
        node.wait_ready(timeout=60)
        check_documents(node, token.group(1))
    finally:
        node.stop()


def check_documents(node: ServeProcess, token: str) -> None:
    admin = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=node.base, timeout=30) as client:
        actor = client.get("/actors/market", headers={"Accept": ACTIVITY_JSON})
        assert actor.status_code == 200, actor.text + node.read_output()
        assert actor.headers["content-type"].startswith(ACTIVITY_JSON)
        assert actor.json()["preferredUsername"] == "market"
        assert "BEGIN PUBLIC KEY" in actor.json()["publicKey"]["publicKeyPem"]

        created = client.post("/api/v1/offers", json=OFFER, headers=admin)
        assert created.status_code == 201, created.text + node.read_output()
        offer = client.get(f"/offers/{created.json()['id']}", headers={"Accept": ACTIVITY_JSON})
        assert offer.status_code == 200, offer.text
        assert offer.json()["id"] == created.json()["uri"]
        assert offer.json()["@context"], offer.text
        assert "Organic apples" in offer.text

        opened = client.post("/api/v1/proposals", json=proposal(), headers=admin)
        assert opened.status_code == 201, opened.text + node.read_output()
        page = client.get(
            f"/proposals/{opened.json()['id']}",
            headers={"Accept": "text/html", "Accept-Language": "fr"},
        )
        assert page.status_code == 200, page.text
        assert 'lang="fr"' in page.text
        assert "Décompte provisoire" in page.text  # "Counts so far", from messages.po
        assert "Counts so far" not in page.text

        context = client.get("/ns/coop-v1.jsonld")
        assert context.status_code == 200
        assert context.json() == json.loads((ROOT / "schemas/contexts/coop-v1.jsonld").read_text())

        for name in ("coopnode.css", "live.js"):
            static = client.get(f"/static/{name}")
            assert static.status_code == 200, name
            assert static.content == (ROOT / "node" / "static" / name).read_bytes()


OFFER = {
    "title": {"en": "Organic apples", "fr": "Pommes bio"},
    "categories": ["apples"],
    "price": {"amount": "3.50", "currency": "EUR"},
    "unit": "kg",
    "quantity": {"available": "40"},
}


def proposal() -> dict[str, object]:
    return {
        "title": "Adopt the 2027 delivery tariff",
        "options": ["For", "Against"],
        "rule": "majority",
        "closes_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
    }
