"""Test runs keep their files for a look afterwards, but only the newest few:
real nodes leave ~150 MB each, and runs had filled /tmp with 12 GB."""

from __future__ import annotations

import fcntl
from pathlib import Path

from tests.testbed.testbed import _LOCK, prune


def _run(base: Path, name: str) -> Path:
    d = base / name
    d.mkdir()
    (d / "log").write_text("x")
    return d


def test_prune_keeps_the_newest_and_every_run_in_use(tmp_path: Path) -> None:
    old = [_run(tmp_path, f"20261207-0{i}0000-x") for i in range(5)]
    (old[0] / _LOCK).touch()
    busy = old[1]
    with (busy / _LOCK).open("wb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # another test run, still going
        removed = prune(tmp_path, keep=2)
    assert sorted(removed) == [old[0], old[2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [busy.name, old[3].name, old[4].name]
    )
