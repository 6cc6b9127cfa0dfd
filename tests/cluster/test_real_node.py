"""The real-node testbed itself, and AK's pods in real containers: basics.

The remote cluster's real node (kubelet + containerd + runc) runs inside the
test run's sandbox; these check that it runs pods as a kubelet does, that AK's
placement lands AK's pods there, and that a node leaves nothing behind.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.realutil import exec_in, kubectl, local_pod, remote_pod, run, shell_pod
from tests.cluster.util import wait_until
from tests.conftest import AKNode
from tests.testbed import realnode, sandbox
from tests.testbed.cgroups import hierarchies
from tests.testbed.cluster import Cluster
from tests.testbed.nodefiles import SYSCTLS

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]


def _sysctls() -> dict[str, str]:
    return {s: (Path("/proc/sys") / s).read_text() for s in SYSCTLS}


def test_node_runs_a_pod_and_leaves_nothing_behind(remote_cluster: Cluster) -> None:
    before = _sysctls()
    node = remote_cluster.add_real_node("real-scratch", taint=False)
    cgroups = [own / node.cgroup for own in hierarchies().values()]
    assert all(c.is_dir() for c in cgroups)
    ns = "scratch"
    remote_cluster.kubectl("create", "namespace", ns)
    remote_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {
                "nodeName": node.name,
                "containers": [
                    {
                        "name": "c",
                        "image": "ak-testbed.local/shell:1",
                        "imagePullPolicy": "Never",
                        "command": ["sh", "-c", "echo started; exec sleep 3600"],
                    }
                ],
            },
        },
        ns,
    )

    def running() -> bool:
        p = remote_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/p")
        return bool(p.get("status", {}).get("phase") == "Running")

    wait_until("pod on the scratch node Running", running, 60)
    pod = remote_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/p")
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(node.pod_cidr)
    logs = remote_cluster.kubectl("-n", ns, "logs", "p")
    assert logs.stdout == "started\n"
    # The kubelet set the sysctls it wants, but only on the node's own copies.
    assert (node.dir / "sysctl" / "vm.overcommit_memory").read_text().strip() == "1"

    node.stop()
    remote_cluster.real_nodes.remove(node)
    remote_cluster.kubectl("delete", "namespace", ns, "--wait=false")
    remote_cluster.kubectl("delete", "node", node.name, "--wait=false")
    assert _sysctls() == before
    assert not any(c.exists() for c in cgroups), cgroups
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert node.bridge not in links.stdout
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(node.dir) not in ps.stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(node.dir) not in mounts


def test_ak_pod_runs_on_the_real_node(
    ak_real: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    remote_real_node: realnode.RealNode,
) -> None:
    run(
        local_cluster,
        ak_real,
        shell_pod(ak_real, "hello", "echo hello from $(hostname); sleep 3600"),
    )
    remote = remote_pod(remote_cluster, ak_real, "hello")
    assert remote["spec"]["nodeName"] == remote_real_node.name
    local = local_pod(local_cluster, ak_real, "hello")
    # The local pod shows the real pod's address, on the real node's bridge.
    ip = local["status"]["podIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(remote_real_node.pod_cidr)
    assert local["status"]["podIPs"] == [{"ip": ip}]
    statuses = local["status"]["containerStatuses"]
    assert statuses[0]["containerID"].startswith("containerd://")
    assert statuses[0]["imageID"]

    logs = kubectl(local_cluster, "-n", ak_real.namespace, "logs", "hello")
    assert logs.stdout == "hello from hello\n", logs.stderr
    done = exec_in(local_cluster, ak_real, "hello", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (done.returncode, done.stdout) == (3, "out\n"), done.stderr
    assert done.stderr == "err\ncommand terminated with exit code 3\n"


HOLDER = """
import time
from tests.testbed.testbed import Testbed

tb = Testbed()
node = tb.cluster("held").add_real_node("real-held", taint=False)
print(node.cgroup, node.dir, flush=True)
time.sleep(600)
"""


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_an_interrupted_run_leaves_nothing_behind(tmp_path: Path) -> None:
    """SIGKILL the sandbox's init while a node runs: its PID namespace takes
    every process with it, and the sandbox's outer process removes the cgroups."""
    script = tmp_path / "hold.py"
    script.write_text(HOLDER)
    env = {k: v for k, v in os.environ.items() if k != sandbox.ENV}  # a sandbox of its own
    outer = subprocess.Popen(
        [sys.executable, "-m", "tests.testbed.sandbox", "--", sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert outer.stdout is not None
        cgroup, node_dir = outer.stdout.readline().split()
        (unshare,) = _children(outer.pid)
        (init,) = _children(unshare)
        os.kill(init, signal.SIGKILL)
        assert outer.wait(60) == -signal.SIGKILL or outer.returncode != 0
    finally:
        outer.kill()
        outer.wait(10)
        if outer.stdout is not None:
            outer.stdout.close()
    leftovers = [own / cgroup for own in hierarchies().values()]
    assert not any(c.exists() for c in leftovers), leftovers
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert node_dir not in ps.stdout
