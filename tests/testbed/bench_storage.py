"""Benchmark: a StatefulSet with a claim per replica, through AK vs straight on the remote (#29).

The remote cluster provisions for real (``tests.testbed.localpath``: rancher's
local-path-provisioner onto a remote real node's disk; a helper pod per
volume). The same StatefulSet (``--replicas``, one ``volumeClaimTemplate`` of
16Mi each, real containers on the real node) is created:

* ``direct``: on the remote cluster, in its class ``local-path``: the baseline;
* ``ak``: on the local cluster, in AK's class ``actual-kubelets`` (the remote
  default, so the same remote class), on the AK node whose pods run on that
  real node.

Each figure is the time from creating the StatefulSet until all its pods are
Running and Ready (and until the first is), polled every 0.2 s. For each AK
round also AK's cost per replica (a claim and its pod, created, Ready, then
deleted with the claim and its remote volume): API requests from AK's
``/metrics`` (those on claims, volumes and classes apart) and CPU seconds
from ``/proc``, with AK's idle CPU over the same time subtracted; rounds
alternate the two so both see the same machine. Between rounds the
StatefulSet and its claims are deleted, and the next round waits until the
provisioner has removed their volumes. ``Parallel`` pod management by default
(every claim provisioned at once); ``--ordered`` uses ``OrderedReady``.

Prints a table and writes JSON; asserts nothing. In the testbed sandbox::

    python -m tests.testbed.sandbox -- .venv/bin/python -m tests.testbed.bench_storage
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ak.core.storage import DEFAULT_CLASS
from tests.testbed import images, realnode, sandbox, workloads
from tests.testbed.akproc import AKProcess, real_node_args
from tests.testbed.bench_measures import _diff, _metrics, _proc_stats
from tests.testbed.cluster import Cluster
from tests.testbed.localpath import STORAGE_CLASS, LocalPath
from tests.testbed.procs import wait_for
from tests.testbed.testbed import Testbed

Obj = dict[str, Any]
NS = "bench"
NAME = "web"
STORAGE_RESOURCES = ("persistentvolumeclaims", "persistentvolumes", "storageclasses")
IDLE_WINDOW = 10.0


def statefulset(replicas: int, hostname: str, storage_class: str, *, ordered: bool) -> Obj:
    """``replicas`` pods on node ``hostname``, each writing to its own claim."""
    spec: Obj = {
        "nodeSelector": {"kubernetes.io/hostname": hostname},
        "tolerations": [realnode.TOLERATION],
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "c",
                "image": images.SHELL,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "hostname > /data/file; exec sleep 3600"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ],
    }
    claim = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class,
        "resources": {"requests": {"storage": "16Mi"}},
    }
    policy = "OrderedReady" if ordered else "Parallel"
    return workloads.statefulset(NAME, replicas, spec, {"data": claim}, podManagementPolicy=policy)


def _ready(cluster: Cluster, namespace: str) -> int:
    pods = cluster.get_json(
        f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": f"app={NAME}"}
    )["items"]
    return sum(
        1
        for p in pods
        if p.get("status", {}).get("phase") == "Running"
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    )


def time_statefulset(
    cluster: Cluster, namespace: str, sts: Obj, timeout: float
) -> dict[str, float]:
    """Seconds from creating ``sts`` until its first and all its pods are Ready."""
    want = sts["spec"]["replicas"]
    start = time.monotonic()
    cluster.apply(sts, namespace)
    first = 0.0
    while True:
        n = _ready(cluster, namespace)
        now = time.monotonic() - start
        if n and not first:
            first = now
        if n >= want:
            return {"first_s": first, "all_s": now}
        if now > timeout:
            raise TimeoutError(f"{n}/{want} pods Ready after {timeout:.0f}s in {namespace}")
        time.sleep(0.2)


def clean(cluster: Cluster, namespace: str, remote: Cluster) -> None:
    """Delete the StatefulSet and its claims; wait until the remote volumes are gone."""
    cluster.kubectl("-n", namespace, "delete", "statefulset", NAME, "--wait=true", timeout=300)
    cluster.kubectl("-n", namespace, "delete", "pvc", "--all", "--wait=true", timeout=300)

    def no_volumes() -> bool:
        return not remote.get_json("/api/v1/persistentvolumes")["items"]

    wait_for("the remote volumes deleted", no_volumes, 600)


def ak_cost(
    ak: AKProcess, replicas: int, idle_rate: float, round_trip: Callable[[], dict[str, float]]
) -> dict[str, float]:
    """Run ``round_trip()`` (create, Ready, delete, volumes gone); AK's requests and
    CPU per replica over it, its idle CPU rate subtracted."""
    before, cpu0, t0 = _metrics(ak.metrics_port), _proc_stats(ak.pid)[1], time.monotonic()
    timed = round_trip()
    cpu = _proc_stats(ak.pid)[1] - cpu0 - idle_rate * (time.monotonic() - t0)
    requests = _diff(_metrics(ak.metrics_port), before)
    storage = sum(
        v for k, v in requests.items() if k.rsplit(" ", 1)[1].split("/")[0] in STORAGE_RESOURCES
    )
    return {
        **timed,
        "requests_per_replica": sum(requests.values()) / replicas,
        "storage_requests_per_replica": storage / replicas,
        "cpu_ms_per_replica": max(cpu, 0.0) * 1000 / replicas,
    }


def idle_cpu_rate(ak: AKProcess) -> float:
    cpu0 = _proc_stats(ak.pid)[1]
    time.sleep(IDLE_WINDOW)
    return (_proc_stats(ak.pid)[1] - cpu0) / IDLE_WINDOW


def run(replicas: int, rounds: int, ordered: bool) -> dict[str, Any]:
    timeout = 60 + 30 * replicas
    with Testbed() as tb:
        local = tb.cluster("local")
        remote = tb.cluster("remote")
        node = remote.add_real_node("st-bench")
        with LocalPath(remote, [node]):
            ak = AKProcess(
                local,
                remote,
                "ak-stb",
                node_ip=sandbox.HOST_IP,
                extra_args=real_node_args(local),
                metrics=True,
            )
            ak.start()
            try:
                wait_for("AK's node Ready", ak.node_ready, 120, [ak.proc] if ak.proc else [])
                local.kubectl("create", "namespace", NS)
                remote.kubectl("create", "namespace", NS)
                ak_host = local.get_json(f"/api/v1/nodes/{ak.node_name}")["metadata"]["labels"][
                    "kubernetes.io/hostname"
                ]
                out: dict[str, list[dict[str, float]]] = {"direct": [], "ak": []}
                for _ in range(rounds):
                    sts = statefulset(replicas, node.name, STORAGE_CLASS, ordered=ordered)
                    out["direct"].append(time_statefulset(remote, NS, sts, timeout))
                    clean(remote, NS, remote)
                    sts = statefulset(replicas, ak_host, DEFAULT_CLASS, ordered=ordered)

                    def through_ak(sts: Obj = sts) -> dict[str, float]:
                        timed = time_statefulset(local, NS, sts, timeout)
                        clean(local, NS, remote)
                        return timed

                    out["ak"].append(ak_cost(ak, replicas, idle_cpu_rate(ak), through_ak))
                return {"replicas": replicas, "ordered": ordered, "rounds": out}
            finally:
                ak.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=20, help="StatefulSet replicas")
    parser.add_argument("--rounds", type=int, default=2, help="direct/AK pairs timed")
    parser.add_argument("--ordered", action="store_true", help="OrderedReady, not Parallel")
    parser.add_argument("--json", type=Path, default=Path("bench-storage.json"))
    args = parser.parse_args(argv)
    if not sandbox.inside():
        print(
            "run inside the testbed sandbox: python -m tests.testbed.sandbox -- ...",
            file=sys.stderr,
        )
        return 2
    r = run(args.replicas, args.rounds, args.ordered)
    args.json.write_text(json.dumps(r, indent=2))
    policy = "OrderedReady" if args.ordered else "Parallel"
    print(f"StatefulSet of {args.replicas} replicas, a 16Mi claim each ({policy}), "
          "created until all pods Running and Ready (s):")  # fmt: skip
    for what, runs in r["rounds"].items():
        all_s = [x["all_s"] for x in runs]
        first = [x["first_s"] for x in runs]
        print(f"  {what:>6}: all {', '.join(f'{x:.1f}' for x in all_s)} "
              f"(median {statistics.median(all_s):.1f}); "
              f"first {statistics.median(first):.1f}")  # fmt: skip
    direct = statistics.median(x["all_s"] for x in r["rounds"]["direct"])
    through = statistics.median(x["all_s"] for x in r["rounds"]["ak"])
    print(f"  AK / direct: {through / direct:.2f}x, +{through - direct:.1f} s")
    ak_runs = r["rounds"]["ak"]

    def median(field: str) -> float:
        return float(statistics.median(x[field] for x in ak_runs))

    print("  AK per replica (claim + pod, created to deleted, net of idle): "
          f"requests {median('requests_per_replica'):.1f} (on claims, volumes, classes "
          f"{median('storage_requests_per_replica'):.1f}), "
          f"CPU {median('cpu_ms_per_replica'):.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
