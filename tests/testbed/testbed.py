"""A testbed: one etcd and the clusters started on it, for a test session or the demo."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO

from tests.testbed.cluster import Cluster
from tests.testbed.etcd import Etcd
from tests.testbed.tools import Tools

# Runs whose files stay for a look afterwards; older ones are removed when a
# new one starts (each real node leaves ~150 MB: test runs filled /tmp with 12 GB).
KEEP_RUNS = 5
_LOCK = ".in-use"
# Open for the process's lifetime: its shared lock marks the run as in use.
_held: list[IO[bytes]] = []


def run_root() -> Path:
    """Where clusters keep their files and logs; one directory per test run."""
    base = Path(os.environ.get("AK_TESTBED_DIR", Path(tempfile.gettempdir()) / "ak-testbed"))
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=base))
    lock = (root / _LOCK).open("wb")
    fcntl.flock(lock, fcntl.LOCK_SH)
    _held.append(lock)
    atexit.register(lock.close)  # released at exit, without a ResourceWarning
    prune(base, KEEP_RUNS)
    return root


def prune(base: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` run directories, never one in use
    (another test run, e.g. in a parallel sandbox, holds its lock); returns them."""
    runs = sorted((d for d in base.iterdir() if d.is_dir()), key=lambda d: d.name, reverse=True)
    removed = []
    for run in runs[keep:]:
        try:
            with (run / _LOCK).open("ab") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # in use (BlockingIOError), or not ours to lock: left alone
        with contextlib.suppress(OSError):
            shutil.rmtree(run)
            removed.append(run)
    return removed


class Testbed:
    """A shared etcd plus clusters started on demand; one per test session or demo."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or run_root()
        self.tools = Tools.find()
        self.etcd = Etcd(self.tools, self.root)
        self.clusters: list[Cluster] = []

    def cluster(
        self,
        name: str,
        *,
        kwok_nodes: int = 0,
        kcm_args: list[str] | None = None,
        apiserver_args: list[str] | None = None,
    ) -> Cluster:
        c = Cluster(
            name, self.tools, self.etcd, self.root, kwok_nodes, kcm_args or [], apiserver_args or []
        )
        self.clusters.append(c)
        return c.start()

    def close(self) -> None:
        for c in reversed(self.clusters):
            c.stop()
        self.clusters.clear()
        self.etcd.stop()

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
