"""Restarts, outages and many local clusters sharing one remote."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from ak.core.names import remote_namespace
from tests.cluster.util import deployment, phase, pod, pods, running, wait_until
from tests.conftest import AKNode, ClusterFactory, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]


def uid(p: Obj) -> str:
    return str(p["metadata"]["uid"])


def twins(
    local: Cluster, remote: Cluster, node: AKNode, selector: str
) -> dict[str, tuple[Obj, Obj | None]]:
    """Local pod name -> (local pod, its remote pod or None)."""
    remote_pods = {p["metadata"]["name"]: p for p in pods(remote, node.remote_namespace)}
    return {
        p["metadata"]["name"]: (p, remote_pods.get(p["metadata"]["name"]))
        for p in pods(local, node.namespace, selector)
    }


def converged(
    local: Cluster, remote: Cluster, node: AKNode, selector: str, *, image: str, count: int
) -> bool:
    """Every live local pod has exactly one remote twin of the same incarnation with
    equal status, and no remote pod lacks a local owner."""
    local_pods = [p for p in pods(local, node.namespace, selector)]
    if any(p["metadata"].get("deletionTimestamp") for p in local_pods):
        return False
    live = [p for p in local_pods if phase(p) == "Running"]
    if len(live) != count or len(local_pods) != count:
        return False
    if any(p["spec"]["containers"][0]["image"] != image for p in live):
        return False
    remote_pods = {p["metadata"]["name"]: p for p in pods(remote, node.remote_namespace)}
    if set(remote_pods) != {p["metadata"]["name"] for p in live}:
        return False
    for p in live:
        r = remote_pods[p["metadata"]["name"]]
        if r["metadata"]["annotations"]["actual.vk/local-uid"] != uid(p):
            return False
        if r["status"].get("podIP") != p["status"].get("podIP"):
            return False
    return True


def test_sigkill_mid_rollout_converges_without_recreating(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    local_cluster.apply(deployment("roll", ak_node.name, 4), ns)
    wait_until(
        "4 Running",
        lambda: converged(
            local_cluster,
            remote_cluster,
            ak_node,
            "app=roll",
            image="registry.invalid/app:1",
            count=4,
        ),
    )
    before = {
        name: uid(r)
        for name, (_, r) in twins(local_cluster, remote_cluster, ak_node, "app=roll").items()
        if r
    }
    local_cluster.kubectl("-n", ns, "set", "image", "deployment/roll", "c=registry.invalid/app:2")
    time.sleep(1.5)
    ak_node.ak.kill()
    time.sleep(3)  # the rollout goes on locally without AK
    ak_node.ak.start()
    wait_until(
        "rollout converged after restart",
        lambda: converged(
            local_cluster,
            remote_cluster,
            ak_node,
            "app=roll",
            image="registry.invalid/app:2",
            count=4,
        ),
        timeout=90,
    )
    after = {
        name: uid(r)
        for name, (_, r) in twins(local_cluster, remote_cluster, ak_node, "app=roll").items()
        if r
    }
    # A pod that lived through the restart kept its remote twin: nothing re-created.
    for name in before.keys() & after.keys():
        assert before[name] == after[name], f"remote pod of {name} was re-created"
    log = ak_node.ak.log.read_text()
    restart_log = log.split("===== start 2")[1]
    created = restart_log.count(" created for ")
    assert created <= 4, f"AK created {created} remote pods after the restart"


def test_pod_deleted_while_ak_was_down_finishes_terminating(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    local_cluster.apply(pod("gone-while-down", ak_node.name), ns)
    local_cluster.apply(pod("stays", ak_node.name), ns)
    wait_until("2 Running", lambda: len(running(pods(local_cluster, ns))) == 2)
    stays_remote = uid(
        remote_cluster.get_json(f"/api/v1/namespaces/{ak_node.remote_namespace}/pods/stays")
    )
    ak_node.ak.kill()
    local_cluster.kubectl("-n", ns, "delete", "pod", "gone-while-down", "--wait=false")
    terminating = local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/gone-while-down")
    assert terminating["metadata"].get("deletionTimestamp")
    ak_node.ak.start()
    wait_until(
        "the terminating pod gone on both sides",
        lambda: (
            not [p for p in pods(local_cluster, ns) if p["metadata"]["name"] == "gone-while-down"]
            and not [
                p
                for p in pods(remote_cluster, ak_node.remote_namespace)
                if p["metadata"]["name"] == "gone-while-down"
            ]
        ),
        timeout=30,
    )
    assert (
        uid(remote_cluster.get_json(f"/api/v1/namespaces/{ak_node.remote_namespace}/pods/stays"))
        == stays_remote
    )


def test_remote_outage_marks_node_not_ready_and_loses_nothing(
    cluster_factory: ClusterFactory, local_cluster: Cluster
) -> None:
    remote = cluster_factory("remote-outage", kwok_nodes=1)
    node = AKNode(
        AKProcess(local_cluster, remote, f"ak-out-{uuid.uuid4().hex[:4]}"),
        f"o-{uuid.uuid4().hex[:4]}",
    )
    local_cluster.kubectl("create", "namespace", node.namespace)
    node.ak.start()
    try:
        wait_for_node_ready(node.ak)
        local_cluster.apply(pod("survivor", node.name), node.namespace)
        first = wait_until("Running", lambda: running(pods(local_cluster, node.namespace)))[0]
        remote.component("kube-apiserver").stop()

        def not_ready_reason() -> str | None:
            conds = node.ak.node()["status"]["conditions"]
            ready = next(c for c in conds if c["type"] == "Ready")
            return ready["reason"] if ready["status"] == "False" else None

        reason = wait_until("node NotReady", not_ready_reason, timeout=30)
        assert reason == "RemoteUnreachable"
        time.sleep(5)
        still = pods(local_cluster, node.namespace)
        assert [uid(p) for p in still] == [uid(first)] and phase(still[0]) == "Running"
        remote.restart("kube-apiserver")
        wait_until("node Ready again", node.ak.node_ready, timeout=30)
        local_cluster.apply(pod("after", node.name), node.namespace)
        wait_until(
            "a new pod runs after the outage",
            lambda: len(running(pods(local_cluster, node.namespace))) == 2,
        )
        assert uid(pods(local_cluster, node.namespace, "app=survivor")[0]) == uid(first)
    finally:
        node.ak.stop()
        local_cluster.kubectl("delete", "namespace", node.namespace, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", node.name, "--wait=false", check=False)


def statefulset(name: str, node: str, replicas: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "containers": [{"name": "c", "image": "registry.invalid/db:1"}],
                },
            },
        },
    }


def test_two_local_clusters_share_one_remote_in_isolation(
    cluster_factory: ClusterFactory, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    other = cluster_factory("local-2")
    ns = f"shared-{uuid.uuid4().hex[:4]}"
    nodes = [
        AKProcess(c, remote_cluster, f"ak-{tag}-{uuid.uuid4().hex[:4]}")
        for c, tag in ((local_cluster, "a"), (other, "b"))
    ]
    try:
        for ak in nodes:
            ak.local.kubectl("create", "namespace", ns)
            ak.start()
        for ak in nodes:
            wait_for_node_ready(ak)
            ak.local.apply(statefulset("db", ak.node_name, 2), ns)
        for ak in nodes:
            wait_until(
                f"db-0 and db-1 Running on {ak.local.name}",
                lambda ak=ak: len(running(pods(ak.local, ns, "app=db"))) == 2,  # type: ignore[misc]
                timeout=90,
            )
        rns = [remote_namespace(ak.node_name, ns) for ak in nodes]
        assert rns[0] != rns[1]
        for ak, r in zip(nodes, rns, strict=True):
            remote_pods = {p["metadata"]["name"]: p for p in pods(remote_cluster, r)}
            assert set(remote_pods) == {"db-0", "db-1"}
            for lp in pods(ak.local, ns, "app=db"):
                twin = remote_pods[lp["metadata"]["name"]]
                assert twin["metadata"]["annotations"]["actual.vk/local-uid"] == uid(lp)
                assert twin["status"]["podIP"] == lp["status"]["podIP"]
        # Scaling one side down leaves the other alone.
        nodes[0].local.kubectl("-n", ns, "scale", "statefulset/db", "--replicas=0")
        wait_until(
            "side a scaled to 0 remotely", lambda: not pods(remote_cluster, rns[0]), timeout=60
        )
        assert len(running(pods(remote_cluster, rns[1]))) == 2
        assert len(running(pods(other, ns, "app=db"))) == 2
    finally:
        for ak in nodes:
            ak.stop()
            ak.local.kubectl("delete", "namespace", ns, "--wait=false", check=False)
            ak.local.kubectl("delete", "node", ak.node_name, "--wait=false", check=False)


def run_ak(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ak", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_bad_config_exits_2_with_one_line(tmp_path: Any) -> None:
    missing = run_ak(
        "run",
        "--node-name=n1",
        f"--local-kubeconfig={tmp_path}/nope",
        f"--remote-kubeconfig={tmp_path}/nope",
    )
    assert missing.returncode == 2
    assert (
        missing.stderr.count("\n") == 1
        and "nope" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [ {")
    bad = run_ak(
        "run", "--node-name=n1", f"--local-kubeconfig={broken}", f"--remote-kubeconfig={broken}"
    )
    assert bad.returncode == 2 and str(broken) in bad.stderr and bad.stderr.count("\n") == 1
    toml = tmp_path / "ak.toml"
    toml.write_text('node-name = "n1"\n[node]\nkubeletPort = "many"\n')
    cfg = run_ak("run", f"--config={toml}")
    assert cfg.returncode == 2 and str(toml) in cfg.stderr and cfg.stderr.count("\n") == 1
    flag = run_ak("run", "--no-such-flag")
    assert flag.returncode == 2 and flag.stderr.count("\n") == 1


def test_unreachable_cluster_at_start_is_retried(tmp_path: Any, local_cluster: Cluster) -> None:
    dead = local_cluster.write_kubeconfig("dead-remote", local_cluster.admin)
    text = dead.read_text().replace(local_cluster.server, "https://127.0.0.1:1")
    dead.write_text(text)
    log = tmp_path / "ak.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ak",
                "run",
                "--node-name=ak-unreach",
                f"--local-kubeconfig={dead}",
                f"--remote-kubeconfig={dead}",
                "--metrics-port=0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until("a retry logged", lambda: "retrying" in log.read_text(), timeout=20)
            assert proc.poll() is None, "AK gave up instead of retrying"
        finally:
            proc.kill()
            proc.wait()
    assert "127.0.0.1:1" in log.read_text()


def test_a_restart_does_not_make_the_node_not_ready(
    ak_node: AKNode, local_cluster: Cluster
) -> None:
    """A restarted AK found its node Ready and said "StartingUp" until its caches
    synced: the node flipped NotReady, got the not-ready:NoSchedule taint, and a pod
    scheduled in that second failed with a FailedScheduling Warning."""
    ns = ak_node.namespace

    def ready_since() -> str:
        node = local_cluster.get_json(f"/api/v1/nodes/{ak_node.name}")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        return str(ready["lastTransitionTime"])

    before = ready_since()
    time.sleep(1.1)  # transition times have whole seconds
    ak_node.ak.kill()
    ak_node.ak.start()
    local_cluster.apply(pod("right-after", ak_node.name), ns)
    wait_for_node_ready(ak_node.ak)
    wait_until("the pod Running", lambda: running(pods(local_cluster, ns, "app=right-after")))
    assert ready_since() == before
    warnings = [
        e["reason"]
        for e in local_cluster.get_json(f"/api/v1/namespaces/{ns}/events")["items"]
        if e.get("type") == "Warning"
    ]
    assert warnings == []
