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

    python -m tests.testbed.bench_many --aks 20 --pods 100

``--curve 1,10,50,100`` instead steps through the AK counts (starting the new
ones at each step): with K AKs and no pods, the remote API server's CPU and
memory, its open watches per AK, each AK's idle CPU and requests; then every
AK runs ``--pods`` pods at once: the API server's CPU per pod lifecycle (also
net of its idle CPU), AK requests per pod, the most watches open meanwhile.

    python -m tests.testbed.bench_many --curve 1,10,50,100 --pods 10
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
from tests.testbed.akproc import AKProcess
from tests.testbed.bench_measures import Stamps, _metrics, _proc_stats
from tests.testbed.bench_phases import _create_all, _delete_each, _pod, _wait
from tests.testbed.cluster import Cluster
from tests.testbed.testbed import Testbed

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
    local: Cluster,
    remote: Cluster,
    tenants: list[Tenant],
    n: int,
    run: str,
    *,
    idle_window: float = IDLE_WINDOW,
) -> dict[str, Any]:
    client = KubeClient(load_kubeconfig(str(local.kubeconfig)), name="bench-local", qps=0)
    apiserver = _pid_of(remote, "kube-apiserver")
    try:
        # Each AK's cost with no pods (heartbeats, node status, watch upkeep): a
        # slower phase pays more of it, which is not a cost of its pods.
        idle0 = [_proc_stats(t.ak.pid)[1] for t in tenants]
        if idle_window:
            await trio.sleep(idle_window)
            for t, c in zip(tenants, idle0, strict=True):
                t.idle_rate = (_proc_stats(t.ak.pid)[1] - c) / idle_window
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


def _remote_objects(cluster: Cluster) -> float:
    """Objects the API server keeps in etcd (``apiserver_storage_objects``, all resources)."""
    with cluster.http() as c:
        text = c.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("apiserver_storage_objects{")
    )


def _ak_requests(tenants: list[Tenant]) -> float:
    """Every API request the AKs made so far (both clusters, from their /metrics)."""
    return sum(sum(_metrics(t.ak.metrics_port).values()) for t in tenants)


async def _idle(remote: Cluster, tenants: list[Tenant], window: float) -> dict[str, Any]:
    """The remote API server's and the AKs' cost with K AKs and no pods."""
    apiserver = _pid_of(remote, "kube-apiserver")
    cpu0 = _proc_stats(apiserver)[1]
    ak0 = [_proc_stats(t.ak.pid)[1] for t in tenants]
    req0 = _ak_requests(tenants)
    await trio.sleep(window)
    rss, cpu1 = _proc_stats(apiserver)
    ak_rates = sorted(
        (_proc_stats(t.ak.pid)[1] - c) / window for t, c in zip(tenants, ak0, strict=True)
    )
    return {
        "remote_apiserver_idle_cpu_percent": 100 * (cpu1 - cpu0) / window,
        "remote_apiserver_rss_mb": rss,
        "ak_idle_cpu_percent_median": 100 * ak_rates[len(ak_rates) // 2],
        "ak_rss_mb_median": sorted(_proc_stats(t.ak.pid)[0] for t in tenants)[len(tenants) // 2],
        "ak_requests_per_s_per_ak_idle": (_ak_requests(tenants) - req0) / window / len(tenants),
    }


def curve(steps: list[int], pods: int, settle: float, window: float) -> list[dict[str, Any]]:
    """Per step K (AKs started so far): idle costs, then every AK runs ``pods`` pods
    at once; the remote API server's CPU per pod lifecycle, its open watches per
    AK (idle and busy), and the AKs' own costs."""
    points: list[dict[str, Any]] = []
    with Testbed() as tb:
        local = tb.cluster("local")
        remote = tb.cluster("remote", kwok_nodes=10)
        tenants = [Tenant(local, remote, i) for i in range(max(steps))]
        _namespaces(local, tenants)
        try:
            watches0, objects0 = _open_watches(remote), _remote_objects(remote)
            apiserver = _pid_of(remote, "kube-apiserver")
            rss0 = _proc_stats(apiserver)[0]
            started = 0
            for k in steps:
                _start(tenants[started:k])
                started = k
                group = tenants[:k]
                # Watches of unused copies close 30 s after start (ak/kube/ondemand.py).
                time.sleep(settle)
                point: dict[str, Any] = {
                    "aks": k,
                    "remote_watches_per_ak_idle": (_open_watches(remote) - watches0) / k,
                    "remote_apiserver_rss_mb_before_aks": rss0,
                }
                point.update(trio.run(_idle, remote, group, window))
                busy = trio.run(_phase_with_watches, local, remote, group, pods, f"k{k}")
                point.update(busy)
                # The API server's idle cost over the phase is not a cost of the pods.
                total = busy["remote_apiserver_cpu_s_per_pod"] * pods * k
                idle_s = point["remote_apiserver_idle_cpu_percent"] / 100 * busy["seconds"]
                point["remote_apiserver_cpu_s_per_pod_net_of_idle"] = (total - idle_s) / (pods * k)
                point["remote_watches_per_ak_busy_peak"] = (
                    busy["remote_watches_busy_peak"] - watches0
                ) / k
                point["remote_objects_added_per_ak_idle"] = (_remote_objects(remote) - objects0) / k
                points.append(point)
                print(_curve_table(points), flush=True)
        finally:
            for t in tenants:
                t.ak.stop()
    return points


async def _phase_with_watches(
    local: Cluster, remote: Cluster, tenants: list[Tenant], n: int, run: str
) -> dict[str, Any]:
    """``_phase``, with the most watches open on the remote API server while the pods run."""
    peak = [_open_watches(remote)]

    async def sample() -> None:
        while True:
            await trio.sleep(2)
            peak[0] = max(peak[0], _open_watches(remote))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        req0 = _ak_requests(tenants)
        result = await _phase(local, remote, tenants, n, run, idle_window=0.0)
        result["ak_requests_per_pod"] = (_ak_requests(tenants) - req0) / (n * len(tenants))
        nursery.cancel_scope.cancel()
    result["remote_watches_busy_peak"] = peak[0]
    return result


def _curve_table(points: list[dict[str, Any]]) -> str:
    rows = [
        "AKs | remote watches/AK idle, busy peak | apiserver idle CPU % | apiserver RSS MB"
        " | apiserver CPU ms/pod (net of idle) | AK requests/pod | AK idle CPU %, req/s"
        " | AK RSS MB"
    ]
    for p in points:
        rows.append(
            f"{p['aks']:>3} | {p['remote_watches_per_ak_idle']:.1f}, "
            f"{p['remote_watches_per_ak_busy_peak']:.1f} | "
            f"{p['remote_apiserver_idle_cpu_percent']:.1f} | {p['remote_apiserver_rss_mb']:.0f} | "
            f"{p['remote_apiserver_cpu_s_per_pod'] * 1000:.1f} "
            f"({p['remote_apiserver_cpu_s_per_pod_net_of_idle'] * 1000:.1f}) | "
            f"{p['ak_requests_per_pod']:.1f} | "
            f"{p['ak_idle_cpu_percent_median']:.2f}, {p['ak_requests_per_s_per_ak_idle']:.2f} | "
            f"{p['ak_rss_mb_median']:.0f}"
        )
    return "\n".join(rows)


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
    parser.add_argument(
        "--curve",
        help="AK counts to step through, e.g. 1,10,50,100 (then --pods is per AK per step)",
    )
    parser.add_argument("--settle", type=float, default=45, help="s after starting AKs (curve)")
    parser.add_argument("--window", type=float, default=20, help="idle window, s (curve)")
    args = parser.parse_args(argv)
    if args.curve:
        points = curve([int(k) for k in args.curve.split(",")], args.pods, args.settle, args.window)
        report: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "curve": points,
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(_curve_table(points))
        print(f"written to {args.json}", file=sys.stderr)
        return 0
    results = run(args.aks, args.pods)
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(_table(results))
    print(f"written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
