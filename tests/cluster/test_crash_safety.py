"""SIGKILL AK at seeded random points during churn; every restart must converge.

After each restart, within 30 s: every live local pod has exactly one remote
pod of the same incarnation with the same status, no remote pod or replicated
object lacks a local owner, nothing is stuck Terminating — and pods that ran
through a kill kept their remote pod (nothing re-created).
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from ak.core.labels import ANNOTATION_LOCAL_UID
from tests.cluster.util import deployment, pods
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]
SEED = 20261122
KILLS = 20
APPS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")


def violations(local: Cluster, remote: Cluster, node: AKNode) -> list[str]:
    """What is not (yet) converged; empty when it is."""
    problems: list[str] = []
    local_pods = {p["metadata"]["name"]: p for p in pods(local, node.namespace)}
    remote_pods = {p["metadata"]["name"]: p for p in pods(remote, node.remote_namespace)}
    for name, lp in local_pods.items():
        if lp["metadata"].get("deletionTimestamp"):
            problems.append(f"{name} Terminating")
            continue
        phase = lp.get("status", {}).get("phase")
        rp = remote_pods.get(name)
        if phase in ("Failed", "Succeeded"):
            continue
        if rp is None:
            problems.append(f"{name} has no remote pod")
        elif rp["metadata"]["annotations"].get(ANNOTATION_LOCAL_UID) != lp["metadata"]["uid"]:
            problems.append(f"{name}: remote pod of another incarnation")
        elif rp["status"].get("phase") != phase or rp["status"].get("podIP") != lp["status"].get(
            "podIP"
        ):
            problems.append(f"{name}: status differs")
    for name in remote_pods.keys() - local_pods.keys():
        problems.append(f"remote {name} has no local pod")
    used = {
        ref["secretRef"]["name"]
        for p in local_pods.values()
        for c in p["spec"]["containers"]
        for ref in c.get("envFrom", [])
    }
    secrets = remote.get_json(
        f"/api/v1/namespaces/{node.remote_namespace}/secrets",
        {"labelSelector": "actual.vk/replica=true"},
    )["items"]
    problems += [
        f"secret {s['metadata']['name']} unused"
        for s in secrets
        if s["metadata"]["name"] not in used
    ]
    return problems


def converge(local: Cluster, remote: Cluster, node: AKNode, timeout: float = 30) -> float:
    start = time.monotonic()
    last: list[str] = []
    while time.monotonic() - start < timeout:
        last = violations(local, remote, node)
        if not last:
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"not converged after {timeout}s: {last[:10]}")


def churn_step(rng: random.Random, local: Cluster, node: AKNode, live: dict[str, int]) -> str:
    app = rng.choice(APPS)
    ns = node.namespace
    if app not in live:
        replicas = rng.randint(5, 15)
        spec = deployment(app, node.name, replicas)
        spec["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
            {"secretRef": {"name": f"{app}-env"}}
        ]
        local.kubectl("-n", ns, "create", "secret", "generic", f"{app}-env", "--from-literal=v=1")
        local.apply(spec, ns)
        live[app] = replicas
        return f"create {app} x{replicas}"
    action = rng.choice(("scale", "roll", "delete"))
    if action == "scale":
        live[app] = rng.randint(0, 15)
        local.kubectl("-n", ns, "scale", f"deployment/{app}", f"--replicas={live[app]}")
        return f"scale {app} to {live[app]}"
    if action == "roll":
        local.kubectl("-n", ns, "set", "env", f"deployment/{app}", f"ROLL={rng.randint(0, 10**6)}")
        return f"roll {app}"
    local.kubectl("-n", ns, "delete", "deployment", app, "--wait=false")
    local.kubectl("-n", ns, "delete", "secret", f"{app}-env", "--wait=false")
    del live[app]
    return f"delete {app}"


def test_sigkill_at_random_points_during_churn(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    rng = random.Random(SEED)
    live: dict[str, int] = {}
    steps: list[str] = []
    worst = 0.0
    for kill in range(KILLS):
        for _ in range(rng.randint(3, 5)):
            steps.append(churn_step(rng, local_cluster, ak_node, live))
        time.sleep(rng.uniform(0, 2.5))  # kill somewhere in the middle of AK's work
        before = {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in pods(remote_cluster, ak_node.remote_namespace)
            if p.get("status", {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        }
        ak_node.ak.kill()
        ak_node.ak.start()
        try:
            worst = max(worst, converge(local_cluster, remote_cluster, ak_node))
        except AssertionError as e:
            raise AssertionError(f"kill {kill} after steps {steps[-3:]}: {e}") from e
        after = {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in pods(remote_cluster, ak_node.remote_namespace)
        }
        recreated = [n for n, uid in before.items() if n in after and after[n] != uid]
        assert not recreated, f"kill {kill}: re-created {recreated}"
    created = ak_node.ak.log.read_text().count(" created for ")
    print(f"{KILLS} kills, {len(steps)} steps, {created} pods created, worst {worst:.1f}s")
    assert created >= 400, "the churn was too small to mean anything"
