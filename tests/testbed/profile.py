"""Summarise a py-spy raw (collapsed) profile: where AK's CPU goes, by function.

    python -m tests.testbed.profile bench-profiles/ak-1000.collapsed [--top 40]

Inclusive share: samples with the function anywhere on the stack (counted
once per sample, however deep the recursion); self share: samples with it on
top. ``bench --profile DIR`` writes such files for the burst of each size.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Summary:
    total: int = 0
    inclusive: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)


def frame_name(frame: str) -> str:
    """``fn (path/to/file.py:12)`` -> ``fn path/to/file.py``: lines of one function merged."""
    fn, _, where = frame.partition(" (")
    return f"{fn} {where.rsplit(':', 1)[0]}" if where else fn


def summarise(lines: Iterable[str]) -> Summary:
    out = Summary()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        names = [frame_name(f) for f in stack.split(";")]
        out.total += n
        for name in set(names):
            out.inclusive[name] += n
        out.own[names[-1]] += n
    return out


def report(summary: Summary, top: int) -> str:
    def rows(counter: Counter[str]) -> list[str]:
        return [f"{100 * v / summary.total:5.1f}% {k}" for k, v in counter.most_common(top)]

    if not summary.total:
        return "no samples"
    head = [f"{summary.total} samples", "-- inclusive"]
    return "\n".join([*head, *rows(summary.inclusive), "-- self", *rows(summary.own)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="profile", description=__doc__)
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    with open(args.file) as f:
        print(report(summarise(f), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
