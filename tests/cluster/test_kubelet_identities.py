"""Who may use AK's kubelet port: an identity x endpoint matrix."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import pytest

from tests.cluster.util import pod, pods, running, wait_until
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def client(cluster: Cluster, kubeconfig: Path | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(cluster.ca.pair.cert))
    if kubeconfig is not None:
        user = json.loads(kubeconfig.read_text())["users"][0]["user"]
        ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return httpx.Client(verify=ctx, timeout=30)


def test_identity_endpoint_matrix(ak_node: AKNode, local_cluster: Cluster) -> None:
    ns = ak_node.namespace
    local_cluster.apply(pod("m", ak_node.name), ns)
    wait_until("Running", lambda: running(pods(local_cluster, ns)))
    base = f"https://127.0.0.1:{ak_node.ak.kubelet_port}"
    endpoints = {
        "pods": ("GET", "/pods"),
        "logs": ("GET", f"/containerLogs/{ns}/m/c?tailLines=1"),
        "stats": ("GET", "/stats/summary"),
        "healthz": ("GET", "/healthz"),
        "exec": ("POST", f"/exec/{ns}/m/c?command=true&output=1"),
    }
    identities = {
        # The API server's own kubelet client certificate (system:masters).
        "apiserver": local_cluster.write_kubeconfig("as-apiserver", local_cluster.kubelet_client),
        "cluster-admin": local_cluster.kubeconfig,
        "other-node": local_cluster.node_kubeconfig(f"not-{ak_node.name}"),
        "no-rights": local_cluster.user_kubeconfig(f"plain-{ns}"),
        "anonymous": None,
    }
    expected_ok = {"apiserver", "cluster-admin"}
    # kwok serves a new pod's logs only once it has caught up with the pod.
    with client(local_cluster, identities["apiserver"]) as c:
        logs = base + endpoints["logs"][1]
        wait_until("logs served", lambda: c.get(logs).status_code == 200, timeout=60, interval=1)
    seen: dict[tuple[str, str], int] = {}
    for who, kc in identities.items():
        with client(local_cluster, kc) as c:
            for what, (method, target) in endpoints.items():
                # exec without an upgrade is a bad request once authorized, never a 2xx
                seen[(who, what)] = c.request(method, base + target).status_code
    for (who, what), code in seen.items():
        if who == "anonymous":
            assert code == 401, (who, what, code)
        elif who in expected_ok:
            assert code not in (401, 403), (who, what, code)
        else:
            assert code == 403, (who, what, code)
    assert seen[("apiserver", "logs")] == 200 and seen[("cluster-admin", "pods")] == 200
