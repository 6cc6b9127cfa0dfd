"""Pod lifecycles in real containers, mirrored to the local pod.

kwok deletes pods at once, never crashes, probes nothing and runs out of no
memory; a real kubelet does all of these, and the local pod must say so.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.cluster.realutil import (
    container,
    exec_in,
    gone,
    kubectl,
    local_pod,
    remote_pod,
    run,
    shell_pod,
)
from tests.cluster.test_kubelet_api import Background
from tests.cluster.util import Obj, events_for, wait_until
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def _status(local: Cluster, node: AKNode, name: str) -> Obj:
    status: Obj = local_pod(local, node, name).get("status", {})
    return status


def _ready(status: Obj) -> str:
    return next((c["status"] for c in status.get("conditions", []) if c["type"] == "Ready"), "")


def test_graceful_delete_runs_prestop_and_sigterm_handler(
    ak_real: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    script = (
        "trap 'echo got TERM; sleep 2; echo bye; exit 0' TERM; echo started; "
        "while true; do sleep 0.2; done"
    )
    pre_stop = {"exec": {"command": ["sh", "-c", "echo prestop > /proc/1/fd/1; sleep 1"]}}
    pod = shell_pod(
        ak_real,
        "grace",
        script,
        terminationGracePeriodSeconds=30,
        containers=[container("c", "sh", "-c", script, lifecycle={"preStop": pre_stop})],
    )
    run(local_cluster, ak_real, pod)
    ns = ak_real.namespace
    local_path = f"/api/v1/namespaces/{ns}/pods/grace"
    remote_path = f"/api/v1/namespaces/{ak_real.remote_namespace}/pods/grace"
    with Background(local_cluster, "-n", ns, "logs", "-f", "grace") as logs:
        wait_until("the log stream", lambda: "started" in logs.text(), 30)
        t0 = time.monotonic()
        local_cluster.kubectl("-n", ns, "delete", "pod", "grace", "--wait=false")
        wait_until("the local pod gone", lambda: gone(local_cluster, local_path), 60, 0.1)
        took = time.monotonic() - t0
        wait_until("the stream ended", lambda: logs.proc.poll() is not None, 15)
    assert gone(remote_cluster, remote_path)
    text = logs.text()
    # preStop, then SIGTERM to the process, whose handler ran to its end.
    assert text[-4:] == ["started", "prestop", "got TERM", "bye"], text
    assert 3 <= took < 30, took


def test_grace_period_is_waited_out_then_killed(ak_real: AKNode, local_cluster: Cluster) -> None:
    script = "trap '' TERM; echo deaf; while true; do sleep 0.2; done"
    run(local_cluster, ak_real, shell_pod(ak_real, "deaf", script, terminationGracePeriodSeconds=4))
    ns = ak_real.namespace
    t0 = time.monotonic()
    local_cluster.kubectl("-n", ns, "delete", "pod", "deaf", "--wait=false")
    path = f"/api/v1/namespaces/{ns}/pods/deaf"
    wait_until("the local pod gone", lambda: gone(local_cluster, path), 60, 0.1)
    took = time.monotonic() - t0
    assert 4 <= took < 20, took


def test_crash_loop_and_restart_count_mirrored(ak_real: AKNode, local_cluster: Cluster) -> None:
    local_cluster.apply(shell_pod(ak_real, "crash", "echo crashing; exit 2"), ak_real.namespace)

    def looping() -> Obj | None:
        status = _status(local_cluster, ak_real, "crash")
        cs = (status.get("containerStatuses") or [{}])[0]
        waiting = cs.get("state", {}).get("waiting", {})
        return (
            status if waiting.get("reason") == "CrashLoopBackOff" and cs["restartCount"] else None
        )

    # One read: the container restarts between back-offs, and is Ready while it runs.
    status = wait_until("CrashLoopBackOff on the local pod", looping, 90)
    cs = status["containerStatuses"][0]
    assert cs["lastState"]["terminated"]["exitCode"] == 2
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert cs["ready"] is False
    assert status["phase"] == "Running" and _ready(status) == "False"
    reasons = {e["reason"] for e in events_for(local_cluster, ak_real.namespace, "crash")}
    assert "BackOff" in reasons, reasons


def test_readiness_probe_flips_local_ready_and_endpoints(
    ak_real: AKNode, local_cluster: Cluster
) -> None:
    ns = ak_real.namespace
    probe = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1}
    script = "touch /tmp/ready; exec httpd -f -p 8080 -h /var/www"
    pod = shell_pod(
        ak_real,
        "rd",
        script,
        containers=[
            container(
                "c",
                "sh",
                "-c",
                script,
                readinessProbe=probe,
                ports=[{"containerPort": 8080, "name": "http"}],
            )
        ],
    )
    local_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "rd"},
            "spec": {"selector": {"app": "rd"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
        ns,
    )
    ip = run(local_cluster, ak_real, pod)["status"]["podIP"]

    def endpoint() -> Obj | None:
        slices = local_cluster.get_json(
            f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
            {"labelSelector": "kubernetes.io/service-name=rd"},
        )["items"]
        eps = [e for s in slices for e in s.get("endpoints") or [] if ip in e["addresses"]]
        return eps[0] if eps else None

    def ready_is(want: bool) -> bool:
        ep = endpoint()
        return ep is not None and ep["conditions"]["ready"] is want

    wait_until("the pod's address ready in the Service", lambda: ready_is(True), 60)
    exec_in(local_cluster, ak_real, "rd", "rm", "/tmp/ready")
    wait_until(
        "the local pod NotReady",
        lambda: _ready(_status(local_cluster, ak_real, "rd")) == "False",
        60,
    )
    wait_until("the address not ready in the Service", lambda: ready_is(False), 60)
    exec_in(local_cluster, ak_real, "rd", "touch", "/tmp/ready")
    wait_until("ready again", lambda: ready_is(True), 60)


def test_oom_killed_mirrored(ak_real: AKNode, local_cluster: Cluster) -> None:
    script = 'echo start; x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo never'
    limits = {"limits": {"memory": "20Mi"}, "requests": {"memory": "20Mi"}}
    pod = shell_pod(
        ak_real,
        "oom",
        script,
        restartPolicy="Never",
        containers=[container("c", "sh", "-c", script, resources=limits)],
    )
    local_cluster.apply(pod, ak_real.namespace)

    def terminated() -> Obj | None:
        cs = (_status(local_cluster, ak_real, "oom").get("containerStatuses") or [{}])[0]
        t: Obj | None = cs.get("state", {}).get("terminated")
        return t

    t = wait_until("the container terminated", terminated, 90)
    assert (t["reason"], t["exitCode"]) == ("OOMKilled", 137), t
    wait_until(
        "the local pod Failed", lambda: _status(local_cluster, ak_real, "oom")["phase"] == "Failed"
    )


def test_image_not_there_reports_the_remote_reason(
    ak_real: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    pod = shell_pod(
        ak_real,
        "noimg",
        "true",
        containers=[container("c", "true", image="ak-testbed.local/missing:1")],
    )
    local_cluster.apply(pod, ak_real.namespace)

    def waiting() -> Obj | None:
        cs = (_status(local_cluster, ak_real, "noimg").get("containerStatuses") or [{}])[0]
        w: Obj | None = cs.get("state", {}).get("waiting")
        return w if w and w.get("reason") == "ErrImageNeverPull" else None

    w = wait_until("ErrImageNeverPull on the local pod", waiting, 60)
    assert "ak-testbed.local/missing:1" in w["message"]
    assert remote_pod(remote_cluster, ak_real, "noimg")["status"]["phase"] == "Pending"

    def mirrored() -> Obj | None:
        evs = events_for(local_cluster, ak_real.namespace, "noimg")
        return next((e for e in evs if e["reason"] == "ErrImageNeverPull"), None)

    ev = wait_until("the remote Event on the local pod", mirrored, 60)
    assert ev["type"] == "Warning" and "missing:1" in ev["message"]
    described = kubectl(local_cluster, "-n", ak_real.namespace, "describe", "pod", "noimg")
    assert "ErrImageNeverPull" in described.stdout


def test_stats_carry_real_usage(ak_real: AKNode, local_cluster: Cluster) -> None:
    run(local_cluster, ak_real, shell_pod(ak_real, "busy", "while true; do :; done"))
    base = f"/api/v1/nodes/{ak_real.name}/proxy"

    def busy_stats() -> Obj | None:
        raw = kubectl(local_cluster, "get", "--raw", f"{base}/stats/summary")
        if raw.returncode != 0:
            return None
        summary = json.loads(raw.stdout)
        pods = [p for p in summary["pods"] if p["podRef"]["name"] == "busy"]
        if not pods or not pods[0].get("cpu", {}).get("usageNanoCores"):
            return None
        found: Obj = pods[0]
        return found

    stats = wait_until("real usage in stats/summary", busy_stats, 90, 2)
    assert stats["podRef"]["namespace"] == ak_real.namespace
    # A busy loop: most of a core.
    assert stats["cpu"]["usageNanoCores"] > 200_000_000, stats["cpu"]
    assert stats["memory"]["workingSetBytes"] > 0
    assert [c["name"] for c in stats["containers"]] == ["c"]
    metrics = kubectl(local_cluster, "get", "--raw", f"{base}/metrics/resource")
    assert metrics.returncode == 0, metrics.stderr
    lines = [
        line
        for line in metrics.stdout.splitlines()
        if line.startswith("pod_cpu_usage_seconds_total") and 'pod="busy"' in line
    ]
    assert lines and float(lines[0].split()[1]) > 0, metrics.stdout
