"""In-place resize (``kubectl patch --subresource resize``) of a pod on the AK
node, carried to its twin on a real remote kubelet and reported back."""

from __future__ import annotations

import json
import time

import pytest

from ak.core.quantity import parse_quantity
from tests.cluster.realutil import container, exec_in, local_pod, remote_pod, run, shell_pod
from tests.cluster.util import Obj, events_for, wait_until
from tests.conftest import AKNode
from tests.testbed import realnode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

# What the container's cgroup allows: v2's cpu.max ("30000 100000") or v1's quota.
CPU_QUOTA = "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us"


def _cpu(cpu: str) -> Obj:
    return {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}


def _resize(local: Cluster, node: AKNode, name: str, cpu: str) -> None:
    """``kubectl patch pod NAME --subresource resize``, as one request (so a
    latency measured from here does not count kubectl's start)."""
    patch = {"spec": {"containers": [{"name": "c", "resources": _cpu(cpu)}]}}
    with local.http() as c:
        r = c.patch(
            f"/api/v1/namespaces/{node.namespace}/pods/{name}/resize",
            content=json.dumps(patch),
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
    assert r.status_code == 200, r.text


def _status_cpu(pod: Obj) -> str | None:
    """The CPU limit the kubelet reports the container runs with."""
    for cs in pod.get("status", {}).get("containerStatuses", []):
        if cs["name"] == "c":
            limit: str | None = (cs.get("resources") or {}).get("limits", {}).get("cpu")
            return limit
    return None


def _condition(pod: Obj, type_: str) -> Obj | None:
    conditions = pod.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == type_), None)


def _container(pod: Obj) -> Obj:
    statuses: list[Obj] = pod["status"]["containerStatuses"]
    return next(cs for cs in statuses if cs["name"] == "c")


def _quota(local: Cluster, node: AKNode, name: str) -> str:
    done = exec_in(local, node, name, "sh", "-c", CPU_QUOTA)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


def _running(local: Cluster, node: AKNode, name: str) -> Obj:
    script = "echo up; while true; do sleep 1; done"
    pod = shell_pod(node, name, script, containers=[container("c", "sh", "-c", script)])
    pod["spec"]["containers"][0]["resources"] = _cpu("200m")
    return run(local, node, pod)


def test_resize_reaches_the_remote_pod_without_a_restart(
    ak_real: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    _running(local_cluster, ak_real, "rsz")
    before = _container(remote_pod(remote_cluster, ak_real, "rsz"))
    assert _status_cpu(local_pod(local_cluster, ak_real, "rsz")) == "200m"
    assert _quota(local_cluster, ak_real, "rsz") == "20000"

    t0 = time.monotonic()
    _resize(local_cluster, ak_real, "rsz", "300m")

    def remote_spec_cpu() -> str:
        spec = remote_pod(remote_cluster, ak_real, "rsz")["spec"]["containers"][0]
        limit: str = spec["resources"]["limits"]["cpu"]
        return limit

    wait_until("the remote pod's spec at 300m", lambda: remote_spec_cpu() == "300m", 30, 0.02)
    sent_took = time.monotonic() - t0
    wait_until(
        "the remote kubelet running c with 300m",
        lambda: _status_cpu(remote_pod(remote_cluster, ak_real, "rsz")) == "300m",
        30,
        0.02,
    )
    remote_took = time.monotonic() - t0

    def local_at_300m() -> Obj | None:
        p = local_pod(local_cluster, ak_real, "rsz")
        return p if _status_cpu(p) == "300m" else None

    local = wait_until("the local status showing 300m", local_at_300m, 30, 0.02)
    local_took = time.monotonic() - t0
    print(
        f"\nresize latency: local patch -> remote spec {sent_took * 1000:.0f} ms, "
        f"-> remote status {remote_took * 1000:.0f} ms, -> local status {local_took * 1000:.0f} ms"
    )

    # The same container, resized in place: not restarted, its cgroup's quota changed.
    after = _container(remote_pod(remote_cluster, ak_real, "rsz"))
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == before["restartCount"] == 0
    assert _container(local)["containerID"] == before["containerID"]
    assert _container(local)["restartCount"] == 0
    assert _container(local)["allocatedResources"]["cpu"] == "300m"
    assert _quota(local_cluster, ak_real, "rsz") == "30000"
    remote_spec = remote_pod(remote_cluster, ak_real, "rsz")["spec"]["containers"][0]
    assert remote_spec["resources"] == _cpu("300m")
    # Nothing pending or in progress once the remote kubelet is done.
    wait_until(
        "no resize condition locally",
        lambda: (
            not any(
                _condition(local_pod(local_cluster, ak_real, "rsz"), t)
                for t in ("PodResizePending", "PodResizeInProgress")
            )
        ),
        30,
    )
    # The remote kubelet's account of it, mirrored onto the local pod.
    wait_until(
        "ResizeCompleted among the local pod's Events",
        lambda: any(
            e["reason"] == "ResizeCompleted"
            for e in events_for(local_cluster, ak_real.namespace, "rsz")
        ),
        30,
    )


def test_a_resize_the_remote_node_cannot_fit_is_infeasible_locally(
    ak_real: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    remote_real_node: realnode.RealNode,
) -> None:
    _running(local_cluster, ak_real, "big")
    node = remote_cluster.get_json(f"/api/v1/nodes/{remote_real_node.name}")
    remote_cpus = parse_quantity(node["status"]["allocatable"]["cpu"])
    # More than the remote node has, less than the AK node advertises (100):
    # the local API server takes it, the remote one cannot.
    too_many = str(int(remote_cpus) * 4)
    assert int(too_many) < 100
    _resize(local_cluster, ak_real, "big", too_many)

    pending = wait_until(
        "PodResizePending on the local pod",
        lambda: _condition(local_pod(local_cluster, ak_real, "big"), "PodResizePending"),
        30,
    )
    assert pending["status"] == "True" and pending["reason"] == "Infeasible", pending
    assert "remote cluster refused the resize" in pending["message"], pending
    print(f"\nrefused resize, as the local pod says: {pending['message']}")
    warned = wait_until(
        "a Warning Event for the refused resize",
        lambda: [
            e
            for e in events_for(local_cluster, ak_real.namespace, "big")
            if e["reason"] == "ProviderResizeFailed"
        ],
        30,
    )
    assert warned[0]["type"] == "Warning" and warned[0]["message"] == pending["message"]
    # The remote pod runs on as it was; the local status says so.
    remote = remote_pod(remote_cluster, ak_real, "big")
    assert remote["spec"]["containers"][0]["resources"] == _cpu("200m")
    assert _status_cpu(local_pod(local_cluster, ak_real, "big")) == "200m"
    assert _container(remote)["restartCount"] == 0

    # Asking for something the remote can do clears it.
    _resize(local_cluster, ak_real, "big", "250m")
    wait_until(
        "the remote kubelet running c with 250m",
        lambda: _status_cpu(remote_pod(remote_cluster, ak_real, "big")) == "250m",
        30,
    )

    def settled_at_250m() -> bool:
        p = local_pod(local_cluster, ak_real, "big")
        return _condition(p, "PodResizePending") is None and _status_cpu(p) == "250m"

    wait_until("the local pod without PodResizePending, at 250m", settled_at_250m, 30)


def test_pod_level_resources_resize_reaches_the_remote_pod(
    ak_real: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    """``spec.resources`` of the pod as a whole (InPlacePodLevelResourcesVerticalScaling,
    beta and on in 1.36): resized in place on the remote kubelet, which reports
    it in ``status.resources``, mirrored locally."""
    script = "while true; do sleep 1; done"
    pod = shell_pod(ak_real, "podlevel", script)
    pod["spec"]["resources"] = _cpu("200m")
    run(local_cluster, ak_real, pod)
    before = _container(remote_pod(remote_cluster, ak_real, "podlevel"))
    with local_cluster.http() as c:
        r = c.patch(
            f"/api/v1/namespaces/{ak_real.namespace}/pods/podlevel/resize",
            content=json.dumps({"spec": {"resources": _cpu("300m")}}),
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
    assert r.status_code == 200, r.text

    def pod_level_cpu(p: Obj) -> str | None:
        limit: str | None = (
            (p.get("status", {}).get("resources") or {}).get("limits", {}).get("cpu")
        )
        return limit

    wait_until(
        "the remote kubelet running the pod with 300m",
        lambda: pod_level_cpu(remote_pod(remote_cluster, ak_real, "podlevel")) == "300m",
        60,
    )
    remote = remote_pod(remote_cluster, ak_real, "podlevel")
    assert remote["spec"]["resources"] == _cpu("300m")
    local = wait_until(
        "the local status showing the pod at 300m",
        lambda: (
            p
            if pod_level_cpu(p := local_pod(local_cluster, ak_real, "podlevel")) == "300m"
            else None
        ),
        30,
    )
    assert local["status"]["allocatedResources"]["cpu"] == "300m", local["status"]
    after = _container(remote)
    assert after["containerID"] == before["containerID"] and after["restartCount"] == 0
