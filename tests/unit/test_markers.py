"""The fast path (``-m "not cluster"``) collects nothing under tests/cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_not_cluster_collects_no_cluster_test() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not cluster", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    collected = [line for line in out.splitlines() if line.startswith("tests/")]
    assert collected, out[-2000:]
    assert not [line for line in collected if line.startswith("tests/cluster/")]
    # The three files that once lacked a marker are deselected too.
    assert "test_migration" not in out
