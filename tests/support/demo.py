"""Starting ``coopnode demo`` as a process and reading what it prints, for the tests
that use the demo's three co-ops (end-to-end and browser tests)."""

from __future__ import annotations

import queue
import random
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from tests.support.processes import ROOT, coopnode_command, process_env

READY = "Press Ctrl-C to stop the demo."
AS2 = {"Accept": "application/activity+json"}

_NODE = re.compile(r"^\s*node\s+(\S+)\s+(http://\S+/)\s+@(\S+)\s+(.+?)\s*$")
_LOGIN = re.compile(r"^\s*login\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.+?)\s*$")
_PROPOSAL = re.compile(r"^\s*proposal\s+(\S+)\s+(\S+)\s+(http://\S+)\s+(.+?)\s*$")
_DATA = re.compile(r"^Data: (.+) \((.+)\)\.$")
_CLOSES = re.compile(r"closing at (\S+):$")


@dataclass(frozen=True)
class DemoNodeInfo:
    handle: str
    base: str  # http://127.0.0.1:PORT/ (with the slash)
    address: str  # handle@127.0.0.1:PORT
    name: str

    @property
    def actor(self) -> str:
        return f"{self.base}actors/{self.handle}"


@dataclass(frozen=True)
class DemoLogin:
    handle: str
    role: str
    username: str
    password: str
    name: str


@dataclass(frozen=True)
class DemoProposal:
    handle: str
    kind: str  # "internal" or "shared"
    url: str
    title: str


@dataclass
class DemoInfo:
    nodes: dict[str, DemoNodeInfo] = field(default_factory=dict)
    logins: list[DemoLogin] = field(default_factory=list)
    proposals: list[DemoProposal] = field(default_factory=list)
    data_dir: Path | None = None
    closes_at: datetime | None = None

    def login(self, handle: str, role: str = "admin") -> DemoLogin:
        """The first printed login of ``role`` on the co-op ``handle``."""
        return next(x for x in self.logins if x.handle == handle and x.role == role)

    def proposal(self, kind: str) -> DemoProposal:
        return next(p for p in self.proposals if p.kind == kind)


def parse_demo_output(text: str) -> DemoInfo:
    """What the demo printed: its nodes, logins, proposals and data directory."""
    info = DemoInfo()
    for line in text.splitlines():
        if m := _NODE.match(line):
            handle, base, address, name = m.groups()
            info.nodes[handle] = DemoNodeInfo(handle, base, address, name)
        elif m := _LOGIN.match(line):
            info.logins.append(DemoLogin(*m.groups()))
        elif m := _PROPOSAL.match(line):
            info.proposals.append(DemoProposal(*m.groups()))
        elif m := _DATA.match(line):
            info.data_dir = Path(m.group(1))
        elif m := _CLOSES.search(line):
            info.closes_at = datetime.fromisoformat(m.group(1))
    return info


def free_ports(count: int = 4) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    for _ in range(200):
        first = random.randrange(20_000, 60_000)
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free consecutive ports")


@dataclass
class DemoProcess:
    port: int
    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)

    def read_output(self) -> str:
        while True:
            try:
                self.output.append(self.lines.get_nowait())
            except queue.Empty:
                return "".join(self.output)

    def wait_ready(self, timeout: float = 60.0) -> DemoInfo:
        """Wait for the line saying Ctrl-C stops the demo; what it printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.read_output()
            if READY in text:
                return parse_demo_output(text)
            if self.process.poll() is not None:
                time.sleep(0.2)  # the last lines
                raise RuntimeError(f"coopnode demo exited early:\n{self.read_output()}")
            time.sleep(0.1)
        raise TimeoutError(f"coopnode demo was not ready in {timeout} s:\n{self.read_output()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        """Send ``sig`` (Ctrl-C), wait for the exit; its status (killed after
        ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        time.sleep(0.1)  # let the reader take the last lines
        return self.process.returncode


def start_demo(port: int | None = None, *extra: str) -> DemoProcess:
    """``coopnode demo --port PORT`` as a process (three free ports if ``port`` is None);
    ``extra`` are further options (``--closes-in 2``)."""
    port = port or free_ports()
    process = subprocess.Popen(
        [*coopnode_command(), "demo", "--port", str(port), *extra],
        cwd=ROOT,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    demo = DemoProcess(port=port, process=process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            demo.lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return demo


def login(http: httpx.Client, node: DemoNodeInfo, who: DemoLogin) -> dict[str, str]:
    response = http.post(
        node.base + "api/v1/login", json={"username": who.username, "password": who.password}
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}
