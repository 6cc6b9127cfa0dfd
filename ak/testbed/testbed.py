"""A testbed: one etcd and the clusters started on it, for a test session or the demo."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from ak.testbed.cluster import Cluster
from ak.testbed.etcd import Etcd
from ak.testbed.tools import Tools


def run_root() -> Path:
    """Where clusters keep their files and logs; one directory per test run."""
    base = Path(os.environ.get("AK_TESTBED_DIR", Path(tempfile.gettempdir()) / "ak-testbed"))
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=base))


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
