"""The downloaded binary: the static dist/ak, with no Python on its PATH, runs the
real-node core scenario (a pod in a real container on the remote real node, its
logs, exec with an exit code), measured beside the Python entry point in the
same run."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.cluster.realutil import exec_in, kubectl, remote_pod, run, shell_pod
from tests.cluster.test_binary import ak_binary  # noqa: F401 - the fixture
from tests.conftest import AKNode, wait_for_node_ready
from tests.testbed import realnode, sandbox
from tests.testbed.akproc import AKProcess, real_node_args
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("entry", ["binary", "python"])
def test_core_scenario_on_a_real_node(
    entry: str,
    *,
    ak_binary: Path,  # noqa: F811 - the fixture imported above
    local_cluster: Cluster,
    remote_cluster: Cluster,
    remote_real_node: realnode.RealNode,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    suffix = uuid.uuid4().hex[:5]
    if entry == "binary":
        # A bare host: no PATH (so no Python), a TMPDIR of its own.
        command, env = [str(ak_binary)], {"TMPDIR": str(tmp_path)}
    else:
        command, env = [sys.executable, "-m", "ak"], None
    ak = AKProcess(
        local_cluster,
        remote_cluster,
        f"ak-{entry[:3]}-{suffix}",
        command=command,
        env=env,
        node_ip=sandbox.HOST_IP,
        extra_args=real_node_args(local_cluster),
    )
    node = AKNode(ak, f"e-{suffix}")
    local_cluster.kubectl("create", "namespace", node.namespace)
    t0 = time.monotonic()
    ak.start()
    try:
        wait_for_node_ready(ak)
        ready_after = time.monotonic() - t0
        run(local_cluster, node, shell_pod(node, "core", "echo core scenario; exec sleep 3600"))
        running_after = time.monotonic() - t0
        remote = remote_pod(remote_cluster, node, "core")
        assert remote["spec"]["nodeName"] == remote_real_node.name
        logs = kubectl(local_cluster, "-n", node.namespace, "logs", "core")
        assert logs.stdout == "core scenario\n", logs.stderr
        done = exec_in(local_cluster, node, "core", "sh", "-c", "exit 5")
        assert done.returncode == 5, done.stderr
        size = f"{ak_binary.stat().st_size / 2**20:.1f} MiB; " if entry == "binary" else ""
        with capsys.disabled():
            print(
                f"\n[{entry}] {size}start to node Ready {ready_after:.1f}s, "
                f"to a real pod Running {running_after:.1f}s",
                file=sys.stderr,
            )
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", node.namespace, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", ak.node_name, "--wait=false", check=False)
    if entry == "binary":
        assert list(tmp_path.iterdir()) == [], "the binary left its unpacked files behind"
