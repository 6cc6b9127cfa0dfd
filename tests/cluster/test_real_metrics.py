"""`kubectl top` and a HorizontalPodAutoscaler on the AK node, through metrics-server.

metrics-server itself (build/metrics-server.sh, run by tests/testbed/metricsserver.py)
scrapes AK's /metrics/resource for the LOCAL cluster's metrics API, as it
scrapes any kubelet; the pods burn CPU in real containers on the remote real
node, whose own kubelet's figures are the reference.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster.realutil import container, exec_in, kubectl, run, shell_pod
from tests.cluster.util import Obj, build_output, wait_until
from tests.conftest import AKNode
from tests.testbed import realnode
from tests.testbed.cluster import Cluster
from tests.testbed.metricsserver import MetricsServer

BURN = "while true; do :; done"
# Busy while /tmp/burn exists: the load is switched on and off by exec.
SWITCHED = "while true; do if [ -e /tmp/burn ]; then :; else sleep 1; fi; done"
LIMIT_M = 200  # the busy container's CPU limit: what it uses, in millicores


@pytest.fixture(scope="module")
def metrics_server(local_cluster: Cluster) -> Iterator[MetricsServer]:
    binary = Path(build_output("metrics-server.sh"))
    # AK's nodes only: a kubelet that is not there any more (another test's
    # AK) would only add scrape errors to the log.
    with MetricsServer(local_cluster, binary, node_selector="type=virtual-kubelet") as ms:
        yield ms


def _millicores(quantity: str) -> float:
    if quantity.endswith("n"):
        return int(quantity[:-1]) / 1e6
    if quantity.endswith("m"):
        return float(quantity[:-1])
    return float(quantity) * 1000


def _top(local: Cluster, *args: str) -> list[str] | None:
    """One row of `kubectl top`, split; None while metrics are not available."""
    out = kubectl(local, "top", *args, "--no-headers")
    return out.stdout.split() if out.returncode == 0 and out.stdout.strip() else None


def _remote_usage(remote: Cluster, node: AKNode, pod_node: str) -> dict[str, float]:
    """The remote kubelet's own figures for the AK node's pods (its /stats/summary,
    through the remote API server's node proxy): pod name -> millicores."""
    summary = remote.get_json(f"/api/v1/nodes/{pod_node}/proxy/stats/summary")
    return {
        p["podRef"]["name"]: p.get("cpu", {}).get("usageNanoCores", 0) / 1e6
        for p in summary["pods"]
        if p["podRef"]["namespace"] == node.remote_namespace
    }


def _close(seen: float, want: float) -> bool:
    # Both are rates over windows of 10-15 s that do not coincide.
    return abs(seen - want) <= max(30.0, 0.2 * want)


def test_kubectl_top_agrees_with_the_remote_kubelet(
    ak_real: AKNode, local_cluster: Cluster, remote_cluster: Cluster, metrics_server: MetricsServer
) -> None:
    limits = {"limits": {"cpu": f"{LIMIT_M}m"}, "requests": {"cpu": f"{LIMIT_M}m"}}
    pod = shell_pod(
        ak_real, "burn", "", containers=[container("c", "sh", "-c", BURN, resources=limits)]
    )
    local_pod = run(local_cluster, ak_real, pod)
    remote_node = remote_cluster.get_json(
        f"/api/v1/namespaces/{ak_real.remote_namespace}/pods/burn"
    )["spec"]["nodeName"]
    ns = ak_real.namespace
    assert local_pod["spec"]["nodeName"] == ak_real.name
    wait_until("kubectl top pod burn", lambda: _top(local_cluster, "pod", "burn", "-n", ns), 90, 2)
    # Three of metrics-server's windows in a row, each against the remote
    # kubelet's figures of the moment. With the node's samples stamped with the
    # scrape's time, the node read 251m, 257m, 165m, 1m for a steady ~155m.
    readings: list[tuple[float, float, float, float]] = []
    seen: set[str] = set()

    def new_window() -> bool:
        got = local_cluster.get_json(f"/apis/metrics.k8s.io/v1beta1/nodes/{ak_real.name}")
        fresh = got["timestamp"] not in seen
        seen.add(got["timestamp"])
        return fresh

    while len(readings) < 3:
        wait_until("a new window of the node's metrics", new_window, 45, 1)
        pod_row = _top(local_cluster, "pod", "burn", "-n", ns)
        node_row = _top(local_cluster, "node", ak_real.name)
        remote = _remote_usage(remote_cluster, ak_real, remote_node)
        assert pod_row and node_row, (pod_row, node_row)
        readings.append(
            (
                _millicores(pod_row[1]),
                _millicores(node_row[1]),
                remote["burn"],
                sum(remote.values()),
            )
        )
    print(
        "\nkubectl top through AK vs the remote kubelet (millicores): "
        + "; ".join(
            f"pod {p:.0f} vs {rp:.0f}, node {n:.0f} vs {rn:.0f}" for p, n, rp, rn in readings
        )
    )
    for pod_m, node_m, remote_pod_m, remote_node_m in readings:
        assert _close(pod_m, remote_pod_m), readings
        assert _close(node_m, remote_node_m), readings
        # A busy loop under a 200m limit uses its limit (the machine permitting).
        assert remote_pod_m > LIMIT_M / 2, readings


def _hpa_replicas(cluster: Cluster, ns: str) -> int:
    got: Obj = cluster.get_json(
        f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/web"
    )
    return int(got.get("status", {}).get("desiredReplicas") or 0)


def _hpa_reaction(
    cluster: Cluster, ns: str, spec: Obj, kubectl_exec: Callable[..., int]
) -> tuple[float, float]:
    """A Deployment of pods with ``spec`` and an HPA on CPU in ``cluster``'s
    namespace ``ns``; the pod's load switched on, then off, by
    ``kubectl_exec(pod, *command)``. Seconds from load on to the HPA asking
    for more replicas, and from load off (all replicas Ready) to asking for 1."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec},
        },
    }
    now_window = {"stabilizationWindowSeconds": 0}
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                }
            ],
            "behavior": {"scaleUp": now_window, "scaleDown": now_window},
        },
    }
    cluster.apply([deployment, hpa], ns)

    def first_pod() -> str | None:
        pods = cluster.get_json(
            f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": "app=web"}
        )["items"]
        running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
        return running[0]["metadata"]["name"] if running else None

    pod = wait_until("the Deployment's pod Running", first_pod, 90, 1)

    def idle_measured() -> bool:
        got = cluster.get_json(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/web")
        current = got.get("status", {}).get("currentMetrics") or []
        return (
            bool(current)
            and current[0]["resource"]["current"].get("averageUtilization") is not None
        )

    wait_until("the HPA measuring the idle pod", idle_measured, 90, 1)
    assert _hpa_replicas(cluster, ns) == 1
    started = time.monotonic()
    assert kubectl_exec(pod, "touch", "/tmp/burn") == 0
    wait_until("the HPA scaling up", lambda: _hpa_replicas(cluster, ns) > 1, 120, 1)
    up = time.monotonic() - started
    wait_until(
        "the new replicas Running",
        lambda: (
            cluster.get_json(f"/apis/apps/v1/namespaces/{ns}/deployments/web")
            .get("status", {})
            .get("readyReplicas", 0)
            > 1
        ),
        90,
        1,
    )
    stopped = time.monotonic()
    assert kubectl_exec(pod, "rm", "/tmp/burn") == 0
    wait_until("the HPA scaling down", lambda: _hpa_replicas(cluster, ns) == 1, 120, 1)
    down = time.monotonic() - stopped
    return up, down


def test_hpa_scales_a_deployment_on_the_ak_node_as_on_the_real_node(
    ak_real: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    metrics_server: MetricsServer,
) -> None:
    """The same Deployment and HPA on the AK node (its pods on the remote real
    node) and, directly, on the remote real node itself (metrics-server
    scraping its kubelet), one after the other: both scale up under load and
    down after; the reaction times of both are printed side by side."""
    resources = {"requests": {"cpu": "100m"}, "limits": {"cpu": f"{LIMIT_M}m"}}
    busy = container("c", "sh", "-c", SWITCHED, resources=resources)
    ak_spec = shell_pod(ak_real, "web", "", containers=[busy])["spec"]

    def through_ak(pod: str, *command: str) -> int:
        return exec_in(local_cluster, ak_real, pod, *command).returncode

    ak_up, ak_down = _hpa_reaction(local_cluster, ak_real.namespace, ak_spec, through_ak)
    # Its pods away before the baseline, so they do not load the node it measures.
    local_cluster.kubectl("delete", "deployment", "web", "-n", ak_real.namespace)

    ns = f"hpa-direct-{uuid.uuid4().hex[:5]}"
    remote_cluster.kubectl("create", "namespace", ns)
    direct_spec: Obj = {
        "nodeSelector": {realnode.LABEL: realnode.PLACEMENT},
        "tolerations": [realnode.toleration_for()],
        "terminationGracePeriodSeconds": 5,
        "containers": [busy],
    }

    def directly(pod: str, *command: str) -> int:
        return kubectl(remote_cluster, "-n", ns, "exec", pod, "--", *command).returncode

    binary = Path(build_output("metrics-server.sh"))
    selector = f"{realnode.LABEL}={realnode.PLACEMENT}"
    try:
        with MetricsServer(remote_cluster, binary, node_selector=selector):
            real_up, real_down = _hpa_reaction(remote_cluster, ns, direct_spec, directly)
    finally:
        remote_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    print(
        f"\nHPA reaction, load on -> scale-up / load off -> scale-down: "
        f"AK node {ak_up:.1f}s / {ak_down:.1f}s, "
        f"real node directly {real_up:.1f}s / {real_down:.1f}s"
    )
