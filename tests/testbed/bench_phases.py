"""The benchmark's phases, each on its own pods: one pod at a time (latency), N at
once (throughput), the same N straight on the remote cluster (direct), N settled
(idle cost, kill and restart)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
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
from tests.testbed.akproc import AKProcess
from tests.testbed.bench_measures import (
    Stamps,
    _diff,
    _machine_busy,
    _metrics,
    _percentiles,
    _proc_stats,
    _syncs,
)
from tests.testbed.cluster import Cluster

NODE = "ak-bench"
CONCURRENCY = 32
LATENCY_SAMPLES = 50


def _pod(token: bool, name: str, labels: dict[str, str], node: str | None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "registry.invalid/bench:1"}]}
    if not token:
        spec["automountServiceAccountToken"] = False
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
        # AK runs under tests.testbed.memtrace: where its settled allocations go.
        self.memtrace: Path | None = None
        self.token = True

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
                    lambda: self.latency(
                        ns, run, local, remote, min(n, LATENCY_SAMPLES), inf=informers[0]
                    ),
                    lambda: self.throughput(ns, run, n, local, informers[0]),
                    lambda: self.direct(direct_ns, run, n, direct),
                ]
            if idle or restarts:
                phases.append(
                    lambda: self.settled(ns, run, n, (local, remote), idle=idle, restarts=restarts)
                )
            for phase in phases:
                figures = await phase()
                # As it comes: a long run that fails late still leaves what it measured.
                print(f"[bench] {n} pods: {json.dumps(figures)}", file=sys.stderr, flush=True)
                result.update(figures)
            nursery.cancel_scope.cancel()
        return result

    async def latency(
        self, ns: str, run: str, local: Stamps, remote: Stamps, k: int, *, inf: Informer
    ) -> dict[str, Any]:
        """One pod at a time: what AK adds when it is not queueing behind a burst."""
        for i in range(k):
            name = f"lat{i}"
            await self.local.create(
                path("pods", namespace=ns), _pod(self.token, name, {"bench": run}, NODE)
            )
            await _wait("pod Running", lambda name=name: name in local.running, 60)
        names = [f"lat{i}" for i in range(k)]
        await _delete_each(self.local, ns, names)
        # Gone before the next phase, which counts AK's requests from its start.
        await _wait("local pods gone", lambda: not inf.size(), 120)
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
        syncs0 = _syncs(self.ak.metrics_port)
        cpu0 = _proc_stats(pid)[1]
        parts0 = self._parts()
        busy0, t0 = _machine_busy(), time.monotonic()
        names = [f"p{i}" for i in range(n)]
        await _create_all(
            self.local, ns, [_pod(self.token, p, {"bench": run}, NODE) for p in names]
        )
        await _wait("all Running", lambda: all(p in local.running for p in names), 120 + n / 5)
        seconds = time.monotonic() - t0
        busy = _machine_busy() - busy0
        parts = self._parts_since(parts0, n)
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
        syncs = _syncs(self.ak.metrics_port)
        return {
            # Syncs of each work queue per pod lifecycle (create, Running, delete, gone).
            "syncs_per_pod": {
                q: round((v - syncs0.get(q, 0)) / n, 2)
                for q, v in sorted(syncs.items())
                if v - syncs0.get(q, 0)
            },
            "ak_pods_per_s": n / seconds,
            "ak_seconds_to_all_running": seconds,
            "ak_delete_seconds": delete_seconds,
            "ak_rss_mb": rss,
            "ak_cpu_s_per_pod_lifecycle": (_proc_stats(pid)[1] - cpu0) / n,
            "requests_per_pod": {k: round(v / n, 2) for k, v in sorted(cost.items())},
            **_machine("ak", busy, seconds, n),
            "ak_cpu_ms_per_pod_to_running_by_process": parts,
        }

    def _processes(self) -> dict[str, int]:
        """Every process of the testbed by name: where the machine's CPU goes."""
        out = {"AK": self.ak.pid, "benchmark": os.getpid()}
        for cluster in (self.local_cluster, self.remote_cluster):
            for proc in cluster.procs:
                out[f"{cluster.name} {proc.name}"] = proc.pid
        out["etcd"] = self.local_cluster.etcd.proc.pid
        return out

    def _parts(self) -> dict[str, float]:
        parts = {}
        for name, pid in self._processes().items():
            with contextlib.suppress(OSError):
                parts[name] = _proc_stats(pid)[1]
        return parts

    def _parts_since(self, before: dict[str, float], n: int) -> dict[str, float]:
        now = self._parts()
        return {
            name: round((now[name] - cpu) * 1000 / n, 2)
            for name, cpu in before.items()
            if name in now
        }

    def _profiler(self, pid: int, n: int | str) -> subprocess.Popen[bytes] | None:
        """py-spy on AK during the burst: collapsed stacks for `python -m tests.testbed.profile`."""
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
        parts0 = self._parts()
        busy0, t0 = _machine_busy(), time.monotonic()
        names = [f"p{i}" for i in range(n)]
        await _create_all(
            self.remote, ns, [_pod(self.token, p, {"bench": run}, None) for p in names]
        )
        await _wait("all Running", lambda: all(p in direct.running for p in names), 120 + n / 5)
        seconds = time.monotonic() - t0
        busy = _machine_busy() - busy0
        parts = self._parts_since(parts0, n)
        await _delete_each(self.remote, ns, names)
        return {
            "direct_pods_per_s": n / seconds,
            "direct_seconds_to_all_running": seconds,
            **_machine("direct", busy, seconds, n),
            "direct_cpu_ms_per_pod_to_running_by_process": parts,
        }

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
        # The throughput phase left the namespace empty: this is a burst right
        # after a scale to zero, which once waited seconds for the emptied remote
        # namespace to finish terminating.
        t0 = time.monotonic()
        await _create_all(
            self.local, ns, [_pod(self.token, p, {"bench": run}, NODE) for p in names]
        )
        await _wait("all Running", lambda: all(p in local.running for p in names), 120 + n / 5)
        first = min(names, key=lambda p: local.seen[p])
        out["after_zero_first_pod_ms"] = (remote.seen[first] - local.seen[first]) * 1000
        out["after_zero_seconds_to_all_running"] = time.monotonic() - t0
        await trio.sleep(5)  # let status writes settle
        pid = self.ak.pid
        out["settled_rss_mb"] = _proc_stats(pid)[0]
        if self.memtrace is not None:
            self.memtrace.unlink(missing_ok=True)
            os.kill(pid, signal.SIGUSR2)
            await _wait("the allocations", self.memtrace.exists, 120)
            print(f"[bench] {n} pods: live allocations in {self.memtrace}", flush=True)
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
            "writes": {" ".join(k): n for k, n in writes.items()},
            "recreated": recreated,
        }


def _machine(prefix: str, busy: float, seconds: float, n: int) -> dict[str, float]:
    """The whole machine's CPU until all N pods ran: per pod, and how busy it was
    (1.0: every core all the time, so nothing could have gone faster)."""
    cores = os.cpu_count() or 1
    return {
        f"{prefix}_machine_cpu_ms_per_pod_to_running": busy * 1000 / n,
        f"{prefix}_machine_busy_fraction": busy / (seconds * cores),
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
