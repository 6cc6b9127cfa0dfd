"""The node proxy: `kubectl get --raw /api/v1/nodes/N/proxy/...` reaches AK's kubelet port.

kube-apiserver refuses to proxy to a loopback node address, and the session's
test nodes advertise 127.0.0.1. So ``test_node_proxy_in_netns`` runs
``test_node_proxy_paths`` in a pytest of its own inside a fresh network
namespace whose ``lo`` also carries 192.0.2.10 (TEST-NET-1): the clusters and
AK live there, AK advertises that address, and nothing leaves the namespace.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.test_kubelet_api import running_pod
from tests.conftest import NODE_IP, AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

NETNS_NODE_IP = "192.0.2.10"
REPO = Path(__file__).resolve().parents[2]


def _loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_loopback


def test_node_proxy_in_netns() -> None:
    if not _loopback(NODE_IP):
        pytest.skip("already inside the network namespace")
    for tool in ("unshare", "ip"):
        assert shutil.which(tool), f"{tool} is needed for the node-proxy test (.ci/run installs it)"
    inner = (
        "set -e; ip link set lo up; "
        f"ip addr add {NETNS_NODE_IP}/32 dev lo; "
        f"exec env AK_TEST_NODE_IP={NETNS_NODE_IP} {sys.executable} -m pytest "
        "-p no:cacheprovider -q -rA tests/cluster/test_node_proxy.py -k test_node_proxy_paths"
    )
    done = subprocess.run(
        ["unshare", "--net", "--", "sh", "-c", inner],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "PASSED tests/cluster/test_node_proxy.py::test_node_proxy_paths" in out, out


def _raw(cluster: Cluster, path: str, kubeconfig: Path | None = None) -> tuple[int, str]:
    argv = [cluster.tools("kubectl"), f"--kubeconfig={kubeconfig or cluster.kubeconfig}"]
    done = subprocess.run(
        [*argv, "get", "--raw", path], check=False, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr


def test_node_proxy_paths(ak_node: AKNode, local_cluster: Cluster) -> None:
    if _loopback(NODE_IP):
        pytest.skip("needs a non-loopback node address: run by test_node_proxy_in_netns")
    name = running_pod(ak_node, local_cluster)
    base = f"/api/v1/nodes/{ak_node.name}/proxy"

    rc, out = _raw(local_cluster, f"{base}/stats/summary")
    assert rc == 0, out
    summary = json.loads(out)
    assert summary["node"]["nodeName"] == ak_node.name
    assert [p["podRef"]["name"] for p in summary["pods"]] == [name]

    rc, out = _raw(local_cluster, f"{base}/pods")
    assert rc == 0, out
    assert [p["metadata"]["name"] for p in json.loads(out)["items"]] == [name]

    rc, out = _raw(local_cluster, f"{base}/healthz")
    assert (rc, out) == (0, "ok"), out

    rc, out = _raw(local_cluster, f"{base}/metrics/resource")
    assert rc == 0 and "scrape_error" in out, out

    # The API server itself authorizes nodes/proxy for the caller before it dials AK.
    stranger = local_cluster.user_kubeconfig("stranger")
    rc, out = _raw(local_cluster, f"{base}/stats/summary", stranger)
    assert rc != 0 and "Forbidden" in out, out
