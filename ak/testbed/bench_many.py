"""Benchmark: many AKs on one remote cluster. Does each AK's cost stay its own?

Node names are unique per remote cluster, so many local clusters (here: many
AK nodes of one local cluster, which is the same to the remote side) share
one remote. What one tenant costs must grow with its own pods, never with the
other tenants': AK's remote watches are filtered server-side by its node
label, so another tenant's pods never reach it.

Phase 1: one AK alone runs N pods (create, all Running, delete, all gone).
Phase 2: K AKs run N pods each, all at once. Per phase: each AK's CPU seconds
for its lifecycle, the remote API server's CPU seconds per pod, and the remote
API server's open watches per AK (``apiserver_longrunning_requests``).
Prints a table and writes JSON; asserts nothing.

    python -m ak.testbed.bench_many --aks 20 --pods 100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import trio

from ak.kube.client import KubeClient, path
from ak.kube.config import load_kubeconfig
from ak.kube.informer import Informer
from ak.testbed.akproc import AKProcess
from ak.testbed.bench_measures import Stamps, _proc_stats
from ak.testbed.bench_phases import _create_all, _delete_each, _pod, _wait
from ak.testbed.cluster import Cluster
from ak.testbed.testbed import Testbed

IDLE_WINDOW = 10.0


def _pid_of(cluster: Cluster, name: str) -> int:
    return next(p.pid for p in cluster.procs if p.name == name)


def _open_watches(cluster: Cluster) -> float:
    """Watches open on the cluster's API server right now."""
    with cluster.http() as c:
        text = c.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_longrunning_requests{") and 'verb="WATCH"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class Tenant:
    """One AK node and the namespace its pods live in."""

    def __init__(self, local: Cluster, remote: Cluster, i: int) -> None:
        self.name = f"ak-many-{i}"
        self.ns = f"many-{i}"
        self.ak = AKProcess(
            local,
            remote,
            self.name,
            metrics=True,
            extra_args=["--local-qps=0", "--remote-qps=0", "--log-level=info"],
        )
        self.cpu_s = 0.0
        self.seconds = 0.0
        self.idle_rate = 0.0  # CPU seconds per second with no pods

    async def lifecycle(self, client: KubeClient, n: int, run: str) -> None:
        """N pods created, all Running locally, deleted, all gone: AK's CPU for it."""
        stamps = Stamps()
        names = [f"p{i}" for i in range(n)]
        informer = Informer(client, path("pods", namespace=self.ns), handler=stamps.handler)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(informer.run)
            await informer.synced.wait()
            cpu0, t0 = _proc_stats(self.ak.pid)[1], time.monotonic()
            pods = [_pod(True, p, {"bench": run}, self.name) for p in names]
            await _create_all(client, self.ns, pods)
            await _wait("all Running", lambda: all(p in stamps.running for p in names), 300)
            await _delete_each(client, self.ns, names)
            await _wait("local pods gone", lambda: not informer.size(), 300)
            await trio.sleep(1)  # the last remote deletes and Secret clean-up
            self.cpu_s = _proc_stats(self.ak.pid)[1] - cpu0
            self.seconds = time.monotonic() - t0
            nursery.cancel_scope.cancel()


async def _phase(
    local: Cluster, remote: Cluster, tenants: list[Tenant], n: int, run: str
) -> dict[str, Any]:
    client = KubeClient(load_kubeconfig(str(local.kubeconfig)), name="bench-local", qps=0)
    apiserver = _pid_of(remote, "kube-apiserver")
    try:
        # Each AK's cost with no pods (heartbeats, node status, watch upkeep): a
        # slower phase pays more of it, which is not a cost of its pods.
        idle0 = [_proc_stats(t.ak.pid)[1] for t in tenants]
        await trio.sleep(IDLE_WINDOW)
        for t, c in zip(tenants, idle0, strict=True):
            t.idle_rate = (_proc_stats(t.ak.pid)[1] - c) / IDLE_WINDOW
        cpu0 = _proc_stats(apiserver)[1]
        t0 = time.monotonic()
        async with trio.open_nursery() as nursery:
            for t in tenants:
                nursery.start_soon(t.lifecycle, client, n, run)
        seconds = time.monotonic() - t0
        remote_cpu = _proc_stats(apiserver)[1] - cpu0
    finally:
        await client.aclose()
    cpus = sorted(t.cpu_s for t in tenants)
    net = sorted(t.cpu_s - t.idle_rate * t.seconds for t in tenants)
    return {
        "aks": len(tenants),
        "pods_each": n,
        "seconds": seconds,
        "ak_cpu_s_per_pod": {
            "min": cpus[0] / n,
            "median": cpus[len(cpus) // 2] / n,
            "max": cpus[-1] / n,
        },
        "ak_cpu_s_per_pod_net_of_idle": {
            "min": net[0] / n,
            "median": net[len(net) // 2] / n,
            "max": net[-1] / n,
        },
        "ak_idle_cpu_percent_median": 100 * sorted(t.idle_rate for t in tenants)[len(tenants) // 2],
        "remote_apiserver_cpu_s_per_pod": remote_cpu / (n * len(tenants)),
    }


def _start(tenants: list[Tenant]) -> None:
    for t in tenants:
        t.ak.start()
    deadline = time.monotonic() + 120
    for t in tenants:
        while not t.ak.node_ready():
            if time.monotonic() > deadline or not t.ak.alive():
                raise RuntimeError(f"AK {t.name} did not become Ready; log {t.ak.log}")
            time.sleep(0.2)


def _namespaces(local: Cluster, tenants: list[Tenant]) -> None:
    for t in tenants:
        local.kubectl("create", "namespace", t.ns)


def run(aks: int, pods: int) -> dict[str, Any]:
    with Testbed() as tb:
        local = tb.cluster("local")
        remote = tb.cluster("remote", kwok_nodes=10)
        tenants = [Tenant(local, remote, i) for i in range(aks)]
        _namespaces(local, tenants)
        results: dict[str, Any] = {}
        try:
            watches0 = _open_watches(remote)
            _start(tenants[:1])
            time.sleep(3)
            one_watches = _open_watches(remote) - watches0
            results["one"] = trio.run(_phase, local, remote, tenants[:1], pods, "one")
            results["one"]["remote_watches_per_ak"] = one_watches
            _start(tenants[1:])
            time.sleep(5)
            all_watches = _open_watches(remote) - watches0
            results["many"] = trio.run(_phase, local, remote, tenants, pods, "many")
            results["many"]["remote_watches_per_ak"] = all_watches / aks
        finally:
            for t in tenants:
                t.ak.stop()
        return results


def _table(results: dict[str, Any]) -> str:
    rows = [
        "phase | AKs | pods each | s | AK CPU ms/pod min/median/max | the same net of idle"
        " | AK idle CPU % | remote apiserver CPU ms/pod | remote watches per AK"
    ]
    for name in ("one", "many"):
        r = results.get(name)
        if not r:
            continue
        c, d = r["ak_cpu_s_per_pod"], r["ak_cpu_s_per_pod_net_of_idle"]
        rows.append(
            f"{name} | {r['aks']} | {r['pods_each']} | {r['seconds']:.1f} | "
            f"{c['min'] * 1000:.1f} / {c['median'] * 1000:.1f} / {c['max'] * 1000:.1f} | "
            f"{d['min'] * 1000:.1f} / {d['median'] * 1000:.1f} / {d['max'] * 1000:.1f} | "
            f"{r['ak_idle_cpu_percent_median']:.2f} | "
            f"{r['remote_apiserver_cpu_s_per_pod'] * 1000:.1f} | {r['remote_watches_per_ak']:.1f}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_many", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aks", type=int, default=20, help="AK processes (node names)")
    parser.add_argument("--pods", type=int, default=100, help="pods per AK")
    parser.add_argument("--json", default="bench-many.json", help="where to write the figures")
    args = parser.parse_args(argv)
    results = run(args.aks, args.pods)
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(_table(results))
    print(f"written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
