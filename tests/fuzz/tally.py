"""Counting a fuzzing run: cases sent, and each kind of failure with its first input.

By default a failure fails the example at once (Hypothesis then shrinks it to the
smallest input that still fails). With ``COOPNODE_FUZZ_COLLECT=1`` failures are only
counted and the run goes on, so that a long run reports every kind of failure it
finds; the counts are printed at the end of the session either way.
"""

from __future__ import annotations

import os
import traceback
from collections import Counter
from dataclasses import dataclass, field

COLLECT = os.environ.get("COOPNODE_FUZZ_COLLECT") == "1"


class FuzzFailure(AssertionError):
    """A case the node did not survive: a 5xx, a raising round or a stuck item."""


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    first_input: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def case(self, suite: str) -> None:
        self.cases[suite] += 1

    def answered(self, suite: str, status: int) -> None:
        self.statuses[suite, status] += 1

    def failure(self, suite: str, kind: str, where: str, sample: str) -> None:
        """``kind`` is "5xx", "raising round" or "left pending"; ``where`` says where it
        broke (the response's body or the traceback's last frame)."""
        key = (suite, kind, where)
        self.failures[key] += 1
        self.first_input.setdefault(key, sample[:600])
        if not COLLECT:
            raise FuzzFailure(f"{suite}: {kind} at {where}\ninput: {sample[:2000]}")

    def report(self) -> str:
        lines = [
            "fuzzing: " + ", ".join(f"{suite} {n} cases" for suite, n in sorted(self.cases.items()))
        ]
        for suite in sorted(self.cases):
            seen = sorted((s, n) for (name, s), n in self.statuses.items() if name == suite)
            lines.append(f"  {suite} answered: " + ", ".join(f"{s} x{n}" for s, n in seen))
        by_kind: Counter[str] = Counter()
        for (suite, kind, _), n in self.failures.items():
            by_kind[f"{suite} {kind}"] += n
        lines.append(
            "failures: " + (", ".join(f"{k}: {n}" for k, n in sorted(by_kind.items())) or "none")
        )
        for key, n in self.failures.most_common():
            suite, kind, where = key
            lines.append(f"  {n:5d} x {suite} {kind} at {where}")
            lines.append(f"          first input: {self.first_input[key]!r}")
        return "\n".join(lines)


def last_frames(exc: BaseException, count: int = 3) -> str:
    """The exception's type and the last ``count`` frames of the project's own code
    (the library frames under them say less about whose code to fix); its message,
    which varies from case to case, goes with the input instead."""
    here = os.getcwd() + os.sep
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if os.path.abspath(f.filename).startswith(here) and "site-packages" not in f.filename
    ][-count:]
    where = " <- ".join(f"{os.path.relpath(f.filename)}:{f.lineno}" for f in reversed(frames))
    return f"{type(exc).__name__} [{where}]"


def described(exc: BaseException, sample: str) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}\n{sample}"


TALLY = Tally()
