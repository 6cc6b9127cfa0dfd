"""Benchmark: what AK adds to a pod's start, how many pods/s it carries, what it costs.

Runs on testbed clusters (remote nodes simulated by kwok, no stage delays):
AK as a real process between them, the benchmark's own watches on both sides
for timestamps, AK's /metrics for its request counts, /proc for its footprint.
The baseline ("direct") is the same pods created straight on the remote API
server in the same run. Prints a table and writes JSON; asserts nothing.

    python -m ak.testbed.bench --pods 100 --pods 1000 [--idle 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from ak.core.labels import LABEL_NODE
from ak.core.types import Obj
from ak.kube.client import KubeClient, path
from ak.kube.config import load_kubeconfig
from ak.kube.errors import NotFound
from ak.kube.informer import Informer
from ak.testbed.akproc import AKProcess
from ak.testbed.cluster import Cluster
from ak.testbed.testbed import Testbed

NODE = "ak-bench"
CONCURRENCY = 32
LATENCY_SAMPLES = 50


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    v = sorted(values)

    def pct(p: float) -> float:
        return v[min(len(v) - 1, round(p * (len(v) - 1)))]

    return {
        "p50_ms": pct(0.5) * 1000,
        "p90_ms": pct(0.9) * 1000,
        "p99_ms": pct(0.99) * 1000,
        "max_ms": v[-1] * 1000,
    }


@dataclass
class Stamps:
    """First time the benchmark saw each pod reach each stage, by pod name."""

    seen: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)

    def handler(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            return
        name = new["metadata"]["name"]
        now = time.monotonic()
        self.seen.setdefault(name, now)
        self.uids[name] = new["metadata"]["uid"]
        if new.get("status", {}).get("phase") == "Running":
            self.running.setdefault(name, now)


def _proc_stats(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds) of a process."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return rss_kb / 1024, cpu


def _metrics(port: int) -> dict[tuple[str, str], float]:
    """AK's API request counters: (cluster, verb) -> count."""
    out: dict[tuple[str, str], float] = {}
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("ak_api_requests_total{"):
            series, _, value = line.rpartition(" ")
            labels = dict(
                kv.split("=", 1) for kv in series[len("ak_api_requests_total{") : -1].split(",")
            )
            key = (labels["cluster"].strip('"'), labels["verb"].strip('"'))
            out[key] = out.get(key, 0) + float(value)
    return out


def _diff(
    after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for (cluster, verb), v in after.items():
        d = v - before.get((cluster, verb), 0)
        if d:
            out[f"{cluster} {verb}"] = d
    return out


def _pod(name: str, labels: dict[str, str], node: str | None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "registry.invalid/bench:1"}]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


async def _bounded(calls: list[Callable[[], Awaitable[object]]]) -> None:
    """Run every call, CONCURRENCY at a time."""
    limiter = trio.CapacityLimiter(CONCURRENCY)

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        async with limiter:
            await call()

    async with trio.open_nursery() as nursery:
        for call in calls:
            nursery.start_soon(one, call)


async def _delete_each(client: KubeClient, ns: str, names: list[str]) -> None:
    """One DELETE per pod, as controllers delete them: a deletecollection of
    10,000 pods outlasts the API server's own 60 s request timeout."""

    async def delete(name: str) -> None:
        with contextlib.suppress(NotFound):
            await client.delete(path("pods", namespace=ns, name=name))

    await _bounded([functools.partial(delete, name) for name in names])


async def _create_all(client: KubeClient, ns: str, pods: list[Obj]) -> None:
    collection = path("pods", namespace=ns)
    await _bounded([functools.partial(client.create, collection, p) for p in pods])


async def _wait(what: str, cond: Any, limit: float) -> None:
    with trio.fail_after(limit):
        while not cond():  # noqa: ASYNC110 - checks in-memory stamps; a 50 ms tick is fine
            await trio.sleep(0.05)


class Bench:
    def __init__(self, local: Cluster, remote: Cluster, ak: AKProcess) -> None:
        self.local_cluster = local
        self.remote_cluster = remote
        self.ak = ak
        self.results: dict[str, Any] = {}
        self.profile_dir: Path | None = None
        self.settled_only = False

    async def run(self, sizes: list[int], idle: float, restarts: int) -> None:
        # The benchmark's own clients are unthrottled: it must not be the bottleneck.
        self.local = KubeClient(
            load_kubeconfig(str(self.local_cluster.kubeconfig)), name="bench-local", qps=0
        )
        self.remote = KubeClient(
            load_kubeconfig(str(self.remote_cluster.kubeconfig)), name="bench-remote", qps=0
        )
        try:
            for n in sizes:
                self.results[str(n)] = await self.size(
                    n, idle if n == max(sizes) else 0, restarts if n == max(sizes) else 0
                )
        finally:
            await self.local.aclose()
            await self.remote.aclose()

    async def size(self, n: int, idle: float, restarts: int) -> dict[str, Any]:
        run = f"n{n}-{int(time.time())}"
        ns = f"bench-{run}"
        direct_ns = f"direct-{run}"
        await self.local.create(path("namespaces"), {"metadata": {"name": ns}})
        await self.remote.create(path("namespaces"), {"metadata": {"name": direct_ns}})
        local, remote, direct = Stamps(), Stamps(), Stamps()
        # What AK holds before this size's pods: the per-pod cost is what grows from here.
        result: dict[str, Any] = {"pods": n, "rss_before_mb": _proc_stats(self.ak.pid)[0]}
        async with trio.open_nursery() as nursery:
            informers = [
                Informer(self.local, path("pods", namespace=ns), handler=local.handler),
                Informer(
                    self.remote,
                    "/api/v1/pods",
                    label_selector=f"{LABEL_NODE}={NODE},bench={run}",
                    handler=remote.handler,
                ),
                Informer(self.remote, path("pods", namespace=direct_ns), handler=direct.handler),
            ]
            for inf in informers:
                nursery.start_soon(inf.run)
            for inf in informers:
                await inf.synced.wait()
            phases: list[Callable[[], Awaitable[dict[str, Any]]]] = []
            if not self.settled_only:
                phases += [
                    lambda: self.latency(ns, run, local, remote, min(n, LATENCY_SAMPLES)),
                    lambda: self.throughput(ns, run, n, local, informers[0]),
                    lambda: self.direct(direct_ns, run, n, direct),
                ]
            if idle or restarts:
                phases.append(
                    lambda: self.settled(
                        ns, f"{run}-s", n, (local, remote), idle=idle, restarts=restarts
                    )
                )
            for phase in phases:
                figures = await phase()
                # As it comes: a long run that fails late still leaves what it measured.
                print(f"[bench] {n} pods: {json.dumps(figures)}", file=sys.stderr, flush=True)
                result.update(figures)
            nursery.cancel_scope.cancel()
        return result

    async def latency(
        self, ns: str, run: str, local: Stamps, remote: Stamps, k: int
    ) -> dict[str, Any]:
        """One pod at a time: what AK adds when it is not queueing behind a burst."""
        for i in range(k):
            name = f"lat{i}"
            await self.local.create(path("pods", namespace=ns), _pod(name, {"bench": run}, NODE))
            await _wait("pod Running", lambda name=name: name in local.running, 60)
        names = [f"lat{i}" for i in range(k)]
        await _delete_each(self.local, ns, names)
        return {
            "latency_samples": k,
            "added_latency_create": _percentiles([remote.seen[p] - local.seen[p] for p in names]),
            "added_latency_running": _percentiles(
                [local.running[p] - remote.running[p] for p in names]
            ),
        }

    async def throughput(
        self, ns: str, run: str, n: int, local: Stamps, inf: Informer
    ) -> dict[str, Any]:
        """N pods at once, create to Running to deleted; AK's requests per lifecycle."""
        pid = self.ak.pid
        profiler = self._profiler(pid, n)
        before = _metrics(self.ak.metrics_port)
        cpu0 = _proc_stats(pid)[1]
        t0 = time.monotonic()
        names = [f"p{i}" for i in range(n)]
        await _create_all(self.local, ns, [_pod(p, {"bench": run}, NODE) for p in names])
        await _wait("all Running", lambda: all(p in local.running for p in names), 120 + n / 5)
        seconds = time.monotonic() - t0
        rss, _ = _proc_stats(pid)
        t1 = time.monotonic()
        await _delete_each(self.local, ns, names)
        await _wait("local pods gone", lambda: not inf.size(), 120 + n / 5)
        delete_seconds = time.monotonic() - t1
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
        await trio.sleep(1)
        cost = _diff(_metrics(self.ak.metrics_port), before)
        return {
            "ak_pods_per_s": n / seconds,
            "ak_seconds_to_all_running": seconds,
            "ak_delete_seconds": delete_seconds,
            "ak_rss_mb": rss,
            "ak_cpu_s_per_pod_lifecycle": (_proc_stats(pid)[1] - cpu0) / n,
            "requests_per_pod": {k: round(v / n, 2) for k, v in sorted(cost.items())},
        }

    def _profiler(self, pid: int, n: int | str) -> subprocess.Popen[bytes] | None:
        """py-spy on AK during the burst, as collapsed stacks for `python -m ak.testbed.profile`."""
        if self.profile_dir is None:
            return None
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        out = self.profile_dir / f"ak-{n}.collapsed"
        argv = ["py-spy", "record", "-p", str(pid), "-o", str(out), "-f", "raw", "-r", "200"]
        exe = Path(sys.executable).parent / "py-spy"
        argv[0] = str(exe) if exe.exists() else "py-spy"
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def direct(self, ns: str, run: str, n: int, direct: Stamps) -> dict[str, Any]:
        """The same N pods straight on the remote API server: this machine's limit."""
        t0 = time.monotonic()
        names = [f"p{i}" for i in range(n)]
        await _create_all(self.remote, ns, [_pod(p, {"bench": run}, None) for p in names])
        await _wait("all Running", lambda: all(p in direct.running for p in names), 120 + n / 5)
        seconds = time.monotonic() - t0
        await _delete_each(self.remote, ns, names)
        return {"direct_pods_per_s": n / seconds, "direct_seconds_to_all_running": seconds}

    async def settled(
        self,
        ns: str,
        run: str,
        n: int,
        stamps: tuple[Stamps, Stamps],
        *,
        idle: float,
        restarts: int,
    ) -> dict[str, Any]:
        """N pods running: AK's idle cost, then SIGKILL and restart, ``restarts`` times."""
        local, remote = stamps
        out: dict[str, Any] = {}
        names = [f"s{i}" for i in range(n)]
        await _create_all(self.local, ns, [_pod(p, {"bench": run}, NODE) for p in names])
        await _wait("all Running", lambda: all(p in local.running for p in names), 120 + n / 5)
        await trio.sleep(5)  # let status writes settle
        pid = self.ak.pid
        out["settled_rss_mb"] = _proc_stats(pid)[0]
        if idle:
            c0 = _proc_stats(pid)[1]
            await trio.sleep(idle)
            out["idle_cpu_percent"] = 100 * (_proc_stats(pid)[1] - c0) / idle
            out["idle_window_s"] = idle
        if restarts:
            out["restart"] = _median_restart(
                [await self.restart(n, remote, i) for i in range(restarts)]
            )
        await _delete_each(self.local, ns, names)
        return out

    async def restart(self, n: int, remote_stamps: Stamps, i: int = 0) -> dict[str, Any]:
        uids = dict(remote_stamps.uids)
        self.ak.kill()
        t0 = time.monotonic()
        self.ak.start()
        profiler = self._profiler(self.ak.pid, f"restart-{n}" + (f"-{i}" if i else ""))
        port = self.ak.metrics_port
        ready: list[float] = []

        def converged() -> bool:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code != 200:
                    return False
                if not ready:
                    ready.append(time.monotonic() - t0)
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                return False
            return 'ak_workqueue_depth{queue="pods"} 0.0' in text

        with trio.fail_after(120):
            while not await trio.to_thread.run_sync(converged):  # noqa: ASYNC110 - probes AK over HTTP
                await trio.sleep(0.1)
        seconds = time.monotonic() - t0
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
        writes = {k: v for k, v in _metrics(port).items() if k[1] not in ("GET", "WATCH", "STREAM")}
        recreated = sum(
            1 for name, uid in remote_stamps.uids.items() if uids.get(name) not in (None, uid)
        )
        return {
            "converged_s": seconds,
            # Both caches synced and the node registered; the rest is the first
            # sync of every pod.
            "ready_s": ready[0],
            "writes": {f"{c} {v}": n for (c, v), n in writes.items()},
            "recreated": recreated,
        }


def _median_restart(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median convergence time, with every run's times and the
    total of pods re-created across all of them."""
    ordered = sorted(runs, key=lambda r: r["converged_s"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["recreated"] = sum(r["recreated"] for r in runs)
    if len(runs) > 1:
        median["runs"] = [{"converged_s": r["converged_s"], "ready_s": r["ready_s"]} for r in runs]
    return median


def _table(results: dict[str, Any]) -> str:
    nan = float("nan")
    rows = [
        "  pods | added latency, ms: create p50 p90 p99 max | running p50 p99 | "
        "pods/s AK direct ratio | RSS MB | idle CPU % | restart s (ready s), re-created"
    ]
    for n, r in results.items():
        c = r.get("added_latency_create") or {}
        ru = r.get("added_latency_running") or {}
        restart = r.get("restart", {})
        ak, direct = r.get("ak_pods_per_s", nan), r.get("direct_pods_per_s", nan)
        rows.append(
            f"{n:>6} | {c.get('p50_ms', nan):6.1f} {c.get('p90_ms', nan):6.1f} "
            f"{c.get('p99_ms', nan):6.1f} {c.get('max_ms', nan):7.1f} | "
            f"{ru.get('p50_ms', nan):6.1f} {ru.get('p99_ms', nan):6.1f} | "
            f"{ak:6.1f} {direct:6.1f} {ak / direct:.2f} | "
            f"{r.get('settled_rss_mb', r.get('ak_rss_mb', nan)):5.0f} | "
            f"{r.get('idle_cpu_percent', nan):5.2f} | "
            f"{restart.get('converged_s', nan):5.1f} ({restart.get('ready_s', nan):4.1f}) "
            f"{restart.get('recreated', '-')}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pods", type=int, action="append", help="pod counts (default 100 and 1000)"
    )
    parser.add_argument(
        "--idle", type=float, default=60, help="idle CPU window at the largest size, s"
    )
    parser.add_argument("--no-restart", action="store_true", help="skip the kill-and-restart phase")
    parser.add_argument(
        "--restarts",
        type=int,
        default=1,
        help="kill-and-restart cycles at the largest size; the median is reported",
    )
    parser.add_argument(
        "--settled-only",
        action="store_true",
        help="only N pods settled: footprint, idle CPU, restart (no latency, throughput, direct)",
    )
    parser.add_argument("--json", default="bench-results.json", help="where to write the figures")
    parser.add_argument("--profile", help="directory for py-spy profiles of AK during the burst")
    args = parser.parse_args(argv)
    sizes = args.pods or [100, 1000]
    with Testbed() as tb:
        local = tb.cluster("local")
        remote = tb.cluster("remote", kwok_nodes=10)
        # As fast as the API servers allow: AK's own client-side limits lifted;
        # logging as deployed (the testbed's default is debug).
        ak = AKProcess(
            local,
            remote,
            NODE,
            metrics=True,
            extra_args=["--local-qps=0", "--remote-qps=0", "--log-level=info"],
        )
        ak.start()
        deadline = time.monotonic() + 60
        while not ak.node_ready():
            if time.monotonic() > deadline or not ak.alive():
                print(f"AK did not become Ready; log {ak.log}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        bench = Bench(local, remote, ak)
        bench.profile_dir = Path(args.profile) if args.profile else None
        bench.settled_only = args.settled_only
        try:
            trio.run(bench.run, sizes, args.idle, 0 if args.no_restart else args.restarts)
        finally:
            ak.stop()
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": bench.results,
    }
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(_table(bench.results))
    print(json.dumps(report, indent=2))
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
