"""Start-up time of ``coopnode serve`` and its idle memory.

Start-up is measured from spawning the process to its first answer on
``/.well-known/nodeinfo``, on a data directory that already exists (the usual restart);
the first start of a new node, which also creates the database and generates keys, is
printed too. Idle memory is the resident set size after a few requests and a second
of rest.

The node's modules are compiled to bytecode first, as installing the package does
(``pip install`` compiles them, and so does the container image): a checkout run with
``PYTHONDONTWRITEBYTECODE`` set compiles them again at every start, about 0.2 s more.
Last, what importing aiohttp costs a fresh interpreter (time and memory): the node
loads it with the first round of deliveries or the first ballot audit, not to start.

    .venv/bin/python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from tests.support.processes import ROOT, free_port, start_serve


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def timed_start(data_dir: Path, port: int) -> tuple[float, float]:
    started = time.monotonic()
    node = start_serve(data_dir, port)
    try:
        node.wait_ready(timeout=30)
        elapsed = time.monotonic() - started
        resource = f"acct:coop@127.0.0.1:{port}"
        for path in ("/actors/coop", f"/.well-known/webfinger?resource={resource}"):
            httpx.get(node.base + path, headers={"Accept": "application/activity+json"})
        time.sleep(1)
        return elapsed, rss_mib(node.process.pid)
    finally:
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for package in ("node", "federation"):
        compileall.compile_dir(ROOT / package, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "node"
        port = free_port()
        first, _ = timed_start(data_dir, port)
        runs = [timed_start(data_dir, port) for _ in range(args.runs)]
    times = [t for t, _ in runs]
    rss = [r for _, r in runs]
    print(f"first start (new node: database, keys)  {first * 1000:6.0f} ms")
    print(
        f"restart, median of {args.runs}                {statistics.median(times) * 1000:6.0f} ms"
        f"  (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
    )
    print(f"idle RSS, median                         {statistics.median(rss):6.1f} MiB")
    seconds, mib = import_cost("aiohttp")
    print(
        f"import of aiohttp                        {seconds * 1000:6.0f} ms, {mib:+.1f} MiB RSS"
        "  (loaded by the first deliveries or audit, not at start)"
    )


IMPORT_COST = """
import sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
before, started = rss(), time.perf_counter()
__import__(sys.argv[1])
print(time.perf_counter() - started, rss() - before)
"""


def import_cost(module: str, runs: int = 5) -> tuple[float, float]:
    """The median time and resident memory importing ``module`` adds to a fresh Python."""
    found = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_COST, module], capture_output=True, text=True, check=True
        ).stdout.split()
        found.append((float(out[0]), float(out[1])))
    return statistics.median(t for t, _ in found), statistics.median(m for _, m in found)


if __name__ == "__main__":
    main()
