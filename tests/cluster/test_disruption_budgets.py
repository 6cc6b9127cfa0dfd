"""Local PodDisruptionBudgets reflected into the remote namespaces, against real control
planes and kwok: the remote copy is an absolute minAvailable, the remote Eviction API (what
`kubectl drain` calls) honours it, and the remote DisruptionTarget shows on the local pod.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ak.core.labels import ANNOTATION_SOURCE_UID, LABEL_NAMESPACE, LABEL_NODE, LABEL_REPLICA
from tests.cluster.util import budget, deployment, events_for, pods, running, wait_until
from tests.conftest import AKNode, wait_for_node_ready
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]


def remote_budget(remote: Cluster, rns: str, name: str) -> Obj | None:
    with remote.http() as c:
        r = c.get(f"/apis/policy/v1/namespaces/{rns}/poddisruptionbudgets/{name}")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    out: Obj = r.json()
    return out


def min_available(remote: Cluster, rns: str, name: str) -> object:
    copy = remote_budget(remote, rns, name)
    return None if copy is None else copy["spec"].get("minAvailable")


def evict(remote: Cluster, rns: str, name: str) -> int:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
    with remote.http() as c:
        r = c.post(f"/api/v1/namespaces/{rns}/pods/{name}/eviction", json=body)
    return r.status_code


@contextlib.contextmanager
def cordoned(remote: Cluster) -> Iterator[None]:
    """Every schedulable kwok node cordoned for a while (the remote cluster is shared)."""
    nodes = remote.get_json("/api/v1/nodes", {"labelSelector": "type=kwok"})["items"]
    names = [n["metadata"]["name"] for n in nodes if not n["spec"].get("unschedulable")]
    remote.kubectl("cordon", *names)
    try:
        yield
    finally:
        remote.kubectl("uncordon", *names)


def test_budgets_are_reflected_and_evictions_respect_them(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    local_cluster.apply(
        [
            deployment("a", ak_node.name, 3),
            deployment("b", ak_node.name, 3),
            budget("a", "a", minAvailable=2),
            # 60% of 3 is 1.8: the disruption controller rounds up to 2 (never 1).
            budget("b", "b", minAvailable="60%"),
        ],
        ns,
    )
    for app in ("a", "b"):
        wait_until(
            f"3 remote {app} pods Running and the remote budget counting them",
            lambda app=app: (  # type: ignore[misc]
                len(running(pods(remote_cluster, rns, f"app={app}"))) == 3
                and ((remote_budget(remote_cluster, rns, app) or {}).get("status") or {}).get(
                    "disruptionsAllowed"
                )
                == 1
            ),
        )
    copy = remote_budget(remote_cluster, rns, "a")
    assert copy is not None
    local_a = local_cluster.get_json(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/a")
    labels = copy["metadata"]["labels"]
    assert (labels[LABEL_NODE], labels[LABEL_NAMESPACE], labels[LABEL_REPLICA]) == (
        ak_node.name,
        ns,
        "true",
    )
    assert copy["metadata"]["annotations"][ANNOTATION_SOURCE_UID] == local_a["metadata"]["uid"]
    assert copy["spec"]["minAvailable"] == 2
    assert min_available(remote_cluster, rns, "b") == 2

    # What a drain does: cordon, then evict pod by pod. With every remote node
    # cordoned (replacements stay Pending, so none is healthy again) the budget
    # lets exactly one go and refuses the others (429), and `kubectl drain`
    # gives up on the node holding one of the two left.
    with cordoned(remote_cluster):
        names = [p["metadata"]["name"] for p in running(pods(remote_cluster, rns, "app=a"))]
        codes = [evict(remote_cluster, rns, n) for n in names]
        assert sorted(codes) == [201, 429, 429], codes
        left = running(pods(remote_cluster, rns, "app=a"))
        assert len(left) == 2
        drain = remote_cluster.kubectl(
            "drain", left[0]["spec"]["nodeName"], "--pod-selector=app=a",
            # Remote twins are bare pods: a drain needs --force, which still evicts
            # through the Eviction API (so the budget holds).
            "--force", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=10s",
            check=False,
        )  # fmt: skip
        assert drain.returncode != 0, drain.stdout
        assert "disruption budget" in drain.stdout + drain.stderr
        assert len(running(pods(remote_cluster, rns, "app=a"))) == 2

    # The remote DisruptionTarget condition shows on the local pod.
    target = running(pods(remote_cluster, rns, "app=b"))[0]
    condition = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "TerminationByKubelet",
        "message": "node drained by the remote operator",
    }
    remote_cluster.kubectl(
        "patch", "pod", "-n", rns, target["metadata"]["name"], "--subresource=status",
        "--type=strategic", "-p", json.dumps({"status": {"conditions": [condition]}}),
    )  # fmt: skip
    local_name = target["metadata"]["name"]  # remote pods keep their local names

    def local_target() -> Obj | None:
        p = local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/{local_name}")
        conds = [c for c in p["status"].get("conditions") or [] if c["type"] == "DisruptionTarget"]
        return conds[0] if conds else None

    shown = wait_until("DisruptionTarget on the local pod", local_target)
    assert (shown["status"], shown["reason"]) == ("True", "TerminationByKubelet")

    # Scaling follows: 60% of 5 is 3.
    local_cluster.kubectl("scale", "deployment", "b", "-n", ns, "--replicas=5")
    wait_until("the copy at 3", lambda: min_available(remote_cluster, rns, "b") == 3)

    # AK restart: a budget deleted while it is down loses its copy.
    ak_node.ak.stop()
    local_cluster.kubectl("delete", "pdb", "b", "-n", ns)
    ak_node.ak.start()
    wait_for_node_ready(ak_node.ak)
    wait_until(
        "b's copy gone after the restart", lambda: not remote_budget(remote_cluster, rns, "b")
    )

    # A changed budget follows; a deleted one goes.
    local_cluster.kubectl(
        "patch", "pdb", "a", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"minAvailable": None, "maxUnavailable": "50%"}}),
    )  # fmt: skip
    # 3 - ceil(1.5) = 1
    wait_until("the copy at 1", lambda: min_available(remote_cluster, rns, "a") == 1)
    local_cluster.kubectl("delete", "pdb", "a", "-n", ns)
    wait_until("the copy gone", lambda: remote_budget(remote_cluster, rns, "a") is None)

    # A remote budget AK did not make keeps its name: left alone, the user told.
    remote_cluster.apply(budget("taken", "theirs", minAvailable=1), rns)
    local_cluster.apply(budget("taken", "b", minAvailable=1), ns)
    event = wait_until(
        "a conflict Warning",
        lambda: [e for e in events_for(local_cluster, ns, "taken") if e["type"] == "Warning"],
    )[0]
    assert event["reason"] == "PodDisruptionBudgetConflict"
    theirs = remote_budget(remote_cluster, rns, "taken")
    assert theirs is not None and theirs["spec"]["selector"]["matchLabels"] == {"app": "theirs"}
