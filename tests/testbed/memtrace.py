"""Run ``ak`` with tracemalloc on, to see what its memory holds with N pods settled.

    python -m tests.testbed.memtrace OUT run --node-name=... (ak's own arguments)

SIGUSR2 writes the live allocations to OUT, grouped by the line that made
them, largest first. ``bench --memtrace DIR`` sends it once N pods have
settled. Tracing costs CPU and memory of its own: for where the bytes are,
not for the RSS figure.
"""

from __future__ import annotations

import signal
import sys
import tracemalloc
from pathlib import Path

from ak.cli import main as ak_main

TOP = 60
TRACEBACKS = 8
DEPTH = 8


def dump(out: Path) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    stats = snapshot.statistics("lineno")
    total = sum(s.size for s in stats)
    lines = [f"{total / 1e6:.1f} MB traced in {sum(s.count for s in stats)} blocks"]
    for s in stats[:TOP]:
        frame = s.traceback[0]
        lines.append(f"{s.size / 1e6:8.2f} MB {s.count:8d} {frame.filename}:{frame.lineno}")
    lines.append("-- the largest, by the calls that made them")
    for s in snapshot.statistics("traceback")[:TRACEBACKS]:
        lines.append(f"{s.size / 1e6:8.2f} MB {s.count:8d}")
        lines += [f"    {f.filename}:{f.lineno}" for f in reversed(s.traceback)]
    # Whole or not at all: the benchmark takes the file as soon as it exists.
    partial = out.with_suffix(".partial")
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(out)


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    tracemalloc.start(DEPTH)
    signal.signal(signal.SIGUSR2, lambda *_: dump(out))
    return ak_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
