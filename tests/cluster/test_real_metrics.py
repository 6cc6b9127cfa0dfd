"""`kubectl top` and a HorizontalPodAutoscaler on the AK node, through metrics-server.

metrics-server itself (build/metrics-server.sh, run by ak/testbed/metricsserver.py)
scrapes AK's /metrics/resource for the LOCAL cluster's metrics API, as it
scrapes any kubelet; the pods burn CPU in real containers on the remote real
node, whose own kubelet's figures are the reference.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ak.testbed.cluster import Cluster
from ak.testbed.metricsserver import MetricsServer
from tests.cluster.realutil import container, exec_in, kubectl, run, shell_pod
from tests.cluster.util import Obj, build_output, wait_until
from tests.conftest import AKNode

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


def _hpa_replicas(local: Cluster, ns: str) -> int:
    got: Obj = local.get_json(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/web")
    return int(got.get("status", {}).get("desiredReplicas") or 0)


def test_hpa_scales_a_deployment_on_the_ak_node(
    ak_real: AKNode, local_cluster: Cluster, metrics_server: MetricsServer
) -> None:
    ns = ak_real.namespace
    resources = {"requests": {"cpu": "100m"}, "limits": {"cpu": f"{LIMIT_M}m"}}
    template = shell_pod(
        ak_real, "web", "", containers=[container("c", "sh", "-c", SWITCHED, resources=resources)]
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": template["metadata"], "spec": template["spec"]},
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
    local_cluster.apply([deployment, hpa], ns)

    def first_pod() -> str | None:
        pods = local_cluster.get_json(
            f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": "app=web"}
        )["items"]
        running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
        return running[0]["metadata"]["name"] if running else None

    pod = wait_until("the Deployment's pod Running", first_pod, 90, 1)

    def idle_measured() -> bool:
        got = local_cluster.get_json(
            f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/web"
        )
        current = got.get("status", {}).get("currentMetrics") or []
        return (
            bool(current)
            and current[0]["resource"]["current"].get("averageUtilization") is not None
        )

    wait_until("the HPA measuring the idle pod", idle_measured, 90, 1)
    assert _hpa_replicas(local_cluster, ns) == 1
    started = time.monotonic()
    assert exec_in(local_cluster, ak_real, pod, "touch", "/tmp/burn").returncode == 0
    wait_until("the HPA scaling up", lambda: _hpa_replicas(local_cluster, ns) > 1, 120, 1)
    up = time.monotonic() - started
    wait_until(
        "the new replicas Running on the AK node",
        lambda: (
            local_cluster.get_json(f"/apis/apps/v1/namespaces/{ns}/deployments/web")
            .get("status", {})
            .get("readyReplicas", 0)
            > 1
        ),
        90,
        1,
    )
    stopped = time.monotonic()
    assert exec_in(local_cluster, ak_real, pod, "rm", "/tmp/burn").returncode == 0
    wait_until("the HPA scaling down", lambda: _hpa_replicas(local_cluster, ns) == 1, 120, 1)
    down = time.monotonic() - stopped
    print(f"\nHPA on the AK node: load to scale-up {up:.1f}s, load off to scale-down {down:.1f}s")
