"""The etcd that a testbed's clusters share, each under a prefix of its own."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import httpx

from tests.testbed.procs import Proc, free_port, wait_for
from tests.testbed.tools import Tools


class Etcd:
    def __init__(self, tools: Tools, workdir: Path) -> None:
        self.workdir = workdir
        client, peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{client}"
        data = workdir / "etcd-data"
        self.proc = Proc(
            "etcd",
            [
                tools("etcd"),
                "--name=n0",
                f"--data-dir={data}",
                f"--listen-client-urls={self.url}",
                f"--advertise-client-urls={self.url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=n0=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--logger=zap",
                "--log-level=warn",
                "--quota-backend-bytes=4294967296",
            ],
            workdir / "logs" / "etcd.log",
        )
        wait_for(
            "etcd health",
            lambda: httpx.get(f"{self.url}/health", timeout=2).json().get("health") == "true",
            30,
            [self.proc],
        )

    def stop(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.workdir / "etcd-data", ignore_errors=True)

    def compact(self) -> int:
        """Compact etcd's history up to now (as the apiserver does every 5 minutes),
        so watches from older resourceVersions get 410 Gone. Returns the revision."""
        key = base64.b64encode(b"/").decode()
        head = httpx.post(f"{self.url}/v3/kv/range", json={"key": key}, timeout=10).json()
        revision = int(head["header"]["revision"])
        r = httpx.post(
            f"{self.url}/v3/kv/compaction",
            json={"revision": str(revision), "physical": True},
            timeout=30,
        )
        r.raise_for_status()
        return revision
