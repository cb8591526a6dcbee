"""Real ``coopnode`` processes on loopback ports, for end-to-end and fault tests."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def coopnode_command() -> list[str]:
    """The installed console script next to this interpreter, else the module."""
    script = Path(sys.executable).parent / "coopnode"
    return [str(script)] if script.exists() else [sys.executable, "-m", "node.cli"]


@dataclass
class ServeProcess:
    data_dir: Path
    port: int
    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20.0) -> float:
        """Poll until the node answers; returns how long it took."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"coopnode exited early:\n{self.read_output()}")
            try:
                if httpx.get(self.base + "/.well-known/nodeinfo", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"coopnode did not answer in {timeout} s:\n{self.read_output()}")

    def read_output(self) -> str:
        while True:
            try:
                self.output.append(self.lines.get_nowait())
            except queue.Empty:
                return "".join(self.output)

    def stop(self) -> int:
        return stop_process(self.process)


def stop_process(process: subprocess.Popen[str]) -> int:
    """SIGTERM, a grace of ten seconds, then SIGKILL; returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def process_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with ``env`` on top (``COOPNODE_CLOCK_OFFSET``, say)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}


def start_serve(
    data_dir: Path, port: int | None = None, *extra: str, env: dict[str, str] | None = None
) -> ServeProcess:
    """Start ``coopnode serve`` on ``port`` (a free one if None); ``env`` adds to or
    overrides the environment (``{"COOPNODE_CLOCK_OFFSET": "7200"}`` moves its clock)."""
    port = port or free_port()
    process = subprocess.Popen(
        [*coopnode_command(), "serve", "--port", str(port), "--data-dir", str(data_dir), *extra],
        cwd=ROOT,
        env=process_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return watched(process, data_dir, port)


def watched(process: subprocess.Popen[str], data_dir: Path, port: int) -> ServeProcess:
    """A started ``coopnode serve`` whose output lines are read as they come."""
    served = ServeProcess(data_dir=data_dir, port=port, process=process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            served.lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return served


def run_coopnode(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one ``coopnode`` command to its end; ``env`` as for :func:`start_serve`."""
    return subprocess.run(
        [*coopnode_command(), *args],
        cwd=ROOT,
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def admin_token(node: ServeProcess) -> str:
    """The admin token a new local node prints once when it starts."""
    import re

    match = re.search(r"Admin API token \(shown once, keep it safe\): (cn_\S+)", node.read_output())
    assert match, node.read_output()
    return match.group(1)
