"""What the remote operator and the tenant set, on a real remote kubelet: a pod's
own placement onto the real node (``actual.vk/remote-placement`` within
``[pods.placement.allowed]``), the tenant's PodDisruptionBudget holding while
the remote operator runs ``kubectl drain`` on that node, the remote quota
capping what the AK node advertises, and a fake GPU of the real node advertised
and requested through AK. (tests/cluster/test_tenant_placement.py,
test_disruption_budgets.py and test_quota_capacity.py cover the details on kwok.)
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ak.core.tenant_placement import ANNOTATION
from tests.cluster.realutil import (
    container,
    exec_in,
    local_pod,
    remote_pod,
    run,
    shell_pod,
    wait_running,
)
from tests.cluster.util import Obj, budget, events_for, phase, pods, running, wait_until
from tests.conftest import AKNode, ak_on_real_node, node_running
from tests.testbed import realnode, sandbox
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

ASLEEP = "while true; do sleep 1; done"
# Ignores SIGTERM, so an evicted pod stays Terminating for its grace period
# (long enough to see the remote's DisruptionTarget on the local pod).
STUBBORN = "trap '' TERM; while true; do sleep 1; done"


@contextmanager
def ak_with(local: Cluster, remote: Cluster, prefix: str, config: str) -> Iterator[AKNode]:
    """AK with ``config`` (TOML) as its only configuration, in a fresh local
    namespace; the node's pods reach the local API server at the sandbox address."""
    suffix = uuid.uuid4().hex[:5]
    path = local.dir / f"{prefix}-{suffix}.toml"
    path.write_text(config)
    args = [
        f"--config={path}",
        f"--local-apiserver-host={sandbox.HOST_IP}",
        f"--local-apiserver-port={local.port}",
    ]
    ak = AKProcess(local, remote, f"ak-{suffix}", node_ip=sandbox.HOST_IP, extra_args=args)
    with node_running(AKNode(ak, f"{prefix}-{suffix}")) as node:
        yield node


def on_the_real_node(placement: str = realnode.PLACEMENT) -> str:
    """The annotation that asks for the remote real node labelled ``placement``."""
    return json.dumps(
        {
            "nodeSelector": {realnode.LABEL: placement},
            "tolerations": [realnode.toleration_for(placement)],
        }
    )


def remote_budget_allows(remote: Cluster, node: AKNode, name: str) -> int | None:
    with remote.http() as c:
        r = c.get(f"/apis/policy/v1/namespaces/{node.remote_namespace}/poddisruptionbudgets/{name}")
    if r.status_code != 200:
        return None
    allowed = (r.json().get("status") or {}).get("disruptionsAllowed")
    return None if allowed is None else int(allowed)


def on_node(remote: Cluster, node: AKNode, node_name: str, app: str) -> list[Obj]:
    return [
        p
        for p in running(pods(remote, node.remote_namespace, f"app={app}"))
        if p["spec"].get("nodeName") == node_name
    ]


# The allow-list lets a pod ask for the real node; the operator's own
# placement is none, so a pod that asks for nothing lands on a kwok node.
ALLOW_THE_REAL_NODE = f"""
[pods.placement.allowed]
nodeLabels = {{ "{realnode.LABEL}" = ["{realnode.PLACEMENT}"] }}
tolerations = {{ "{realnode.LABEL}" = ["{realnode.PLACEMENT}"] }}
"""


def test_a_remote_drain_honours_the_tenants_budget_for_pods_placed_on_the_real_node(
    local_cluster: Cluster, remote_cluster: Cluster, remote_real_node: realnode.RealNode
) -> None:
    with ak_with(local_cluster, remote_cluster, "dr", ALLOW_THE_REAL_NODE) as node:
        _drain_honours_the_budget(local_cluster, remote_cluster, remote_real_node.name, node)


def _drain_honours_the_budget(
    local: Cluster, remote: Cluster, real_node: str, node: AKNode
) -> None:
    ns = node.namespace
    # A pod asking for nothing: the operator's placement (none) puts it on kwok.
    plain = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain", "labels": {"app": "plain"}},
        "spec": {"nodeName": node.name, "containers": [container("c", "sh", "-c", ASLEEP)]},
    }
    guarded = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "guarded"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "guarded"}},
            "template": {
                "metadata": {
                    "labels": {"app": "guarded"},
                    "annotations": {ANNOTATION: on_the_real_node()},
                },
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node.name},
                    "terminationGracePeriodSeconds": 15,
                    "containers": [container("c", "sh", "-c", STUBBORN)],
                },
            },
        },
    }
    local.apply([plain, guarded, budget("guarded", "guarded", maxUnavailable=1)], ns)

    # Per-pod placement: the annotated pods run in real containers on the real
    # node (reached through AK by exec); the plain one is elsewhere.
    def both_guarded() -> list[Obj] | None:
        got = on_node(remote, node, real_node, "guarded")
        counted = remote_budget_allows(remote, node, "guarded") == 1
        return got if len(got) == 2 and counted else None

    both = wait_until(
        "both guarded pods Running on the real node, the remote budget allowing one",
        both_guarded,
        180,
        1,
    )
    for p in both:
        name = p["metadata"]["name"]
        assert p["spec"]["nodeSelector"] == {realnode.LABEL: realnode.PLACEMENT}
        assert exec_in(local, node, name, "cat", "/etc/hostname").stdout.strip() == name
    wait_until(
        "plain Running", lambda: phase(remote_pod(remote, node, "plain")) == "Running", 90, 1
    )
    assert remote_pod(remote, node, "plain")["spec"]["nodeName"] != real_node

    # The remote operator drains the real node. The first eviction is
    # allowed; its replacement cannot start (the node is cordoned, and the
    # pods ask for it alone), so the second would break the budget: refused,
    # and kubectl drain retries.
    log = local.dir / f"drain-{uuid.uuid4().hex[:5]}.log"
    argv = [
        remote.tools("kubectl"), f"--kubeconfig={remote.kubeconfig}", "drain", real_node,
        # The remote twins are bare pods: --force, which still evicts through
        # the Eviction API (so budgets hold).
        "--force", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=300s",
    ]  # fmt: skip
    with log.open("wb") as out:
        drain = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        _refused_then_allowed(local, remote, real_node, node, drain=drain, log=log)
    finally:
        if drain.poll() is None:
            drain.kill()
            drain.wait()
        remote.kubectl("uncordon", real_node)


def _refused_then_allowed(
    local: Cluster,
    remote: Cluster,
    real_node: str,
    node: AKNode,
    *,
    drain: subprocess.Popen[bytes],
    log: Path,
) -> None:
    ns = node.namespace

    def refused() -> bool:
        return "disruption budget" in log.read_text(errors="replace")

    wait_until("kubectl drain refused by the budget", refused, 120, 1)
    assert drain.poll() is None, log.read_text()
    # One evicted, one kept: the budget held.
    assert len(on_node(remote, node, real_node, "guarded")) == 1, log.read_text()

    # The evicted pod's remote DisruptionTarget shows on its local pod.
    def evicted_locally() -> Obj | None:
        for p in pods(local, ns, "app=guarded"):
            for c in p.get("status", {}).get("conditions") or []:
                if c["type"] == "DisruptionTarget" and c["status"] == "True":
                    found: Obj = c
                    return found
        return None

    target = wait_until("DisruptionTarget on the evicted local pod", evicted_locally, 60, 1)
    assert target["reason"] == "EvictionByEvictionAPI", target
    # Its replacement waits remotely (no node it may use), and still the drain waits.
    wait_until(
        "a replacement twin Pending remotely",
        lambda: any(
            phase(p) == "Pending" for p in pods(remote, node.remote_namespace, "app=guarded")
        ),
        90,
        1,
    )
    assert drain.poll() is None, log.read_text()
    assert remote_budget_allows(remote, node, "guarded") == 0

    # The tenant lets both go (its budget now allows two unavailable): the
    # remote copy follows, and the drain the operator started finishes.
    local.kubectl(
        "patch", "pdb", "guarded", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"maxUnavailable": 2}}),
    )  # fmt: skip
    assert drain.wait(timeout=180) == 0, log.read_text()
    print(f"\nkubectl drain of the real node, as it said:\n{log.read_text()}")
    assert not on_node(remote, node, real_node, "guarded")
    unschedulable = remote.get_json(f"/api/v1/nodes/{real_node}")["spec"].get("unschedulable")
    assert unschedulable is True


def test_the_remote_quota_caps_the_node_and_a_refused_pod_waits_with_the_reason(
    local_cluster: Cluster, remote_cluster: Cluster, remote_real_node: realnode.RealNode
) -> None:
    config = f"""
[pods.placement]
nodeSelector = {{ "{realnode.LABEL}" = "{realnode.PLACEMENT}" }}
tolerations = [{{ key = "{realnode.LABEL}", operator = "Exists", effect = "NoSchedule" }}]

[namespaces.resourceQuota.hard]
"requests.cpu" = "1"
"""
    with ak_with(local_cluster, remote_cluster, "qc", config) as node:
        ns = node.namespace
        wait_until(
            "the node advertising the quota's 1 CPU",
            lambda: node.ak.node()["status"]["allocatable"]["cpu"] == "1",
            60,
        )
        cpu = {"requests": {"cpu": "600m"}, "limits": {"cpu": "600m"}}

        def asleep(name: str, bound: bool) -> Obj:
            spec: Obj = {
                "terminationGracePeriodSeconds": 2,
                "containers": [container("c", "sh", "-c", ASLEEP, resources=cpu)],
            }
            if bound:
                spec["nodeName"] = node.name  # past the local scheduler
            else:
                spec["nodeSelector"] = {"kubernetes.io/hostname": node.name}
            return {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": spec,
            }

        local_cluster.apply(asleep("first", bound=False), ns)
        wait_running(local_cluster, node, "first", 120)
        assert (
            remote_pod(remote_cluster, node, "first")["spec"]["nodeName"] == remote_real_node.name
        )
        # The local scheduler stops where the remote quota would.
        local_cluster.apply(asleep("second", bound=False), ns)
        unscheduled = wait_until(
            "the scheduler refusing second",
            lambda: [
                e
                for e in events_for(local_cluster, ns, "second")
                if e["reason"] == "FailedScheduling"
            ],
            60,
            1,
        )
        assert "Insufficient cpu" in unscheduled[0]["message"], unscheduled
        local_cluster.kubectl("delete", "pod", "second", "-n", ns, "--wait=false")

        # Bound by hand, past the scheduler: the remote quota refuses it, and
        # it waits Pending with the reason until there is room.
        local_cluster.apply(asleep("third", bound=True), ns)
        refused = wait_until(
            "the quota's refusal on third",
            lambda: [e for e in events_for(local_cluster, ns, "third") if e["type"] == "Warning"],
            60,
            1,
        )
        assert "exceeded quota" in refused[0]["message"], refused
        third = local_pod(local_cluster, node, "third")
        assert phase(third) == "Pending"
        waiting = third["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "ProviderCreateFailed", waiting
        assert "exceeded quota" in waiting["message"], waiting
        local_cluster.kubectl("delete", "pod", "first", "-n", ns, "--wait=false")
        # Once there is room it goes ahead on its own.
        wait_running(local_cluster, node, "third", 120)
        assert (
            remote_pod(remote_cluster, node, "third")["spec"]["nodeName"] == remote_real_node.name
        )


GPU = "example.com/gpu"


def test_a_fake_gpu_on_the_real_node_is_advertised_and_reaches_a_real_container(
    local_cluster: Cluster, remote_cluster: Cluster, remote_real_node: realnode.RealNode
) -> None:
    """An extended resource the remote node advertises (as a device plugin or
    an operator would: two fake GPUs in its status) is advertised by the AK
    node with auto capacity, and a pod's request for one passes through to a
    real container on that node."""
    path = f"/api/v1/nodes/{remote_real_node.name}"
    gpus = json.dumps({"status": {"capacity": {GPU: "2"}, "allocatable": {GPU: "2"}}})
    remote_cluster.kubectl(
        "patch", "node", remote_real_node.name, "--subresource=status", "--type=merge", "-p", gpus
    )  # fmt: skip
    try:
        with ak_on_real_node(
            local_cluster, remote_cluster, "g", extra_args=("--auto-capacity",)
        ) as node:
            wait_until(
                "the AK node advertising the real node's 2 GPUs",
                lambda: node.ak.node()["status"]["allocatable"].get(GPU) == "2",
                60,
            )
            one = {"limits": {GPU: "1"}}
            pod = shell_pod(
                node, "trainer", "", containers=[container("c", "sh", "-c", ASLEEP, resources=one)]
            )
            run(local_cluster, node, pod, 120)
            remote = remote_pod(remote_cluster, node, "trainer")
            assert remote["spec"]["nodeName"] == remote_real_node.name
            assert remote["spec"]["containers"][0]["resources"]["requests"][GPU] == "1"
    finally:
        gone = [
            {"op": "remove", "path": f"/status/{field}/{GPU.replace('/', '~1')}"}
            for field in ("capacity", "allocatable")
        ]
        remote_cluster.kubectl(
            "patch", "node", remote_real_node.name, "--subresource=status", "--type=json",
            "-p", json.dumps(gone), check=False,
        )  # fmt: skip
        assert GPU not in remote_cluster.get_json(path)["status"]["capacity"]
