"""The static single binary (build/binary.sh) runs AK end to end against the harness."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ak.core.names import remote_namespace
from tests.cluster.util import build_output, pod, pods, running, wait_until
from tests.conftest import wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

PT_INTERP = 3


def build_binary() -> Path:
    """dist/ak, built by build/binary.sh or reused when its inputs are unchanged."""
    return Path(build_output("binary.sh"))


@pytest.fixture(scope="session")
def ak_binary() -> Path:
    return build_binary()


def elf_interpreter(path: Path) -> bool:
    """Whether the ELF file asks for a dynamic loader (a PT_INTERP program header)."""
    with path.open("rb") as f:
        head = f.read(64)
        assert head[:4] == b"\x7fELF" and head[4] == 2, "not a 64-bit ELF file"
        phoff, phentsize, phnum = (
            struct.unpack_from("<Q", head, 32)[0],
            *struct.unpack_from("<HH", head, 54),
        )
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    types = [struct.unpack_from("<I", table, i * phentsize)[0] for i in range(phnum)]
    return PT_INTERP in types


def test_binary_is_static_and_self_contained(ak_binary: Path, tmp_path: Path) -> None:
    assert not elf_interpreter(ak_binary), "dist/ak needs a dynamic loader: staticx did not run"
    # No Python, no PATH, a fresh TMPDIR: what a bare host or a scratch image gives it.
    env = {"TMPDIR": str(tmp_path)}
    out = subprocess.run(
        [str(ak_binary), "--version"], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("ak ")
    config = subprocess.run(
        [str(ak_binary), "config", "--node-name", "n", "--log-format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"node.name"' in config.stdout
    bad = subprocess.run(
        [str(ak_binary), "run"], env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and bad.stderr.startswith("ak: error: no node name")
    assert list(tmp_path.iterdir()) == [], "the binary left its unpacked files behind"


@pytest.fixture
def namespace(local_cluster: Cluster) -> Iterator[str]:
    ns = f"bin-{uuid.uuid4().hex[:5]}"
    local_cluster.kubectl("create", "namespace", ns)
    yield ns
    local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_binary_runs_a_pod(
    ak_binary: Path,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = f"ak-bin-{uuid.uuid4().hex[:5]}"
    ak = AKProcess(local_cluster, remote_cluster, node, command=[str(ak_binary)])
    started = time.monotonic()
    ak.start()
    try:
        wait_for_node_ready(ak, timeout=60)
        ready_after = time.monotonic() - started
        with capsys.disabled():
            print(
                f"\n[binary] {ak_binary.stat().st_size / 2**20:.1f} MiB; "
                f"cold start to node Ready {ready_after:.1f}s",
                file=sys.stderr,
            )
        local_cluster.apply(pod("hello", node), namespace)
        wait_until(
            "the pod Running through the binary",
            lambda: running(pods(local_cluster, namespace, "app=hello")),
        )
        remote = pods(remote_cluster, remote_namespace(node, namespace), "app=hello")
        assert len(remote) == 1 and remote[0]["status"]["phase"] == "Running"
        # ak doctor is in the binary too (imported lazily by the CLI).
        doctor = subprocess.run(
            [
                str(ak_binary),
                "doctor",
                f"--node-name={node}",
                f"--local-kubeconfig={ak.local_kubeconfig}",
                f"--remote-kubeconfig={ak.remote_kubeconfig}",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "registered by AK before" in doctor.stdout
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "node", node, "--wait=false", check=False)
    assert ak.log.exists()
