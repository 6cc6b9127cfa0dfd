"""The node's CPU counter: every value at the time it held (ak/kubelet/nodecpu.py).

metrics-server rates a node as (cpu₂ - cpu₁) / (t₂ - t₁) between two samples of
/metrics/resource; these tests play remote kubelets whose pods use known CPU
and whose stats refresh on their own schedules, and check each node sample
AK serves against the CPU the pods had really used by its time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ak.core.labels import ANNOTATION_LOCAL_UID, LABEL_NAMESPACE
from ak.core.names import remote_namespace
from ak.core.timefmt import format_time
from ak.kubelet import nodecpu, podviews
from ak.kubelet.nodecpu import NodeCPU, Sample

NODE = "vk-1"
EPOCH = 1_800_000_000  # the simulations' time 0, in seconds since the epoch
STARTED = datetime.fromtimestamp(EPOCH, UTC)
S = 1_000_000_000  # a core-second in core-nanoseconds


@dataclass
class Pod:
    """A remote pod busy at ``cores`` from ``start`` until ``stop``, measured by
    its remote kubelet every ``period`` seconds from ``phase``."""

    name: str
    cores: float
    start: int
    period: int
    phase: int
    stop: int = 10**6
    node: str = "real-0"

    def used(self, t: float) -> int:
        """Core-nanoseconds it had used by ``t``."""
        return int(self.cores * S * max(0, min(t, self.stop) - self.start))

    def measured(self, now: int) -> int | None:
        """When its kubelet last measured it, as of ``now`` (None: not yet)."""
        last = now - (now - self.phase) % self.period
        return last if last > self.start else None


def _remote_pod(p: Pod) -> dict[str, Any]:
    return {
        "metadata": {
            "name": p.name,
            "namespace": remote_namespace(NODE, "ns"),
            "uid": f"remote-{p.name}",
            "labels": {LABEL_NAMESPACE: "ns"},
            "annotations": {ANNOTATION_LOCAL_UID: f"uid-{p.name}"},
        },
        "spec": {"nodeName": p.node},
        "status": {},
    }


def _stamp(t: float) -> str:
    return format_time(datetime.fromtimestamp(EPOCH + t, UTC))


def _stats(p: Pod, at: int) -> dict[str, Any]:
    """The pod's entry in its kubelet's /stats/summary, measured at ``at``."""
    return {
        "podRef": {"name": p.name, "namespace": remote_namespace(NODE, "ns"), "uid": "x"},
        "startTime": _stamp(p.start),
        "cpu": {"time": _stamp(at), "usageCoreNanoSeconds": p.used(at), "usageNanoCores": 1},
        "memory": {"time": _stamp(at), "workingSetBytes": 1000},
    }


def _scrape(pods: list[Pod], now: int, state: NodeCPU | None) -> tuple[float, float, NodeCPU]:
    """AK's /metrics/resource at ``now``: the node's (time, core-seconds)."""
    # Deleted after its last measurement was scraped: what it used between that
    # and its deletion, no one measured.
    alive = [p for p in pods if now <= p.stop + 10]
    summaries: dict[str, dict[str, Any]] = {}
    for p in alive:
        at = p.measured(now)
        if at is not None:
            summaries.setdefault(p.node, {"pods": []})["pods"].append(_stats(p, at))
    when = datetime.fromtimestamp(EPOCH + now, UTC)
    remote = [_remote_pod(p) for p in alive]
    summary, state = podviews.summary(NODE, STARTED, when, remote, summaries, node_cpu=state)
    text = podviews.resource_metrics(summary, False).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    (cpu,) = families["node_cpu_usage_seconds"].samples  # the parser drops "_total"
    (memory,) = families["node_memory_working_set_bytes"].samples
    assert cpu.timestamp is not None
    # One time for the node: metrics-server keeps the memory sample's.
    assert cpu.timestamp == memory.timestamp
    return float(cpu.timestamp) - EPOCH, cpu.value, state


def _run(pods: list[Pod], scrapes: range) -> list[tuple[float, float]]:
    state = None
    out = []
    for now in scrapes:
        t, v, state = _scrape(pods, now, state)
        out.append((t, v))
    return out


def test_a_sample_the_remote_did_not_refresh_keeps_its_time() -> None:
    """The bug: the value changed only when the remote stats did, the time at
    every scrape, so metrics-server saw 0 and then bursts."""
    pods = [Pod("a", 0.25, start=0, period=15, phase=3)]
    samples = _run(pods, range(20, 60, 4))
    for t, v in samples:
        assert t == pods[0].measured(int(t))  # the time of the remote's measurement
        assert v * S == pods[0].used(t)
    assert len({t for t, _ in samples}) == 3  # 18, 33, 48: only when the stats refreshed


def test_every_node_sample_is_what_the_pods_had_used_by_its_time() -> None:
    """Pods on two remote nodes, measured at different phases and periods, one
    starting late and one ending: the counter at each served time is exactly
    the CPU used by then (linear use, so interpolation is exact), never
    decreases, and so every rate metrics-server computes is the true one."""
    pods = [
        Pod("a", 0.2, start=0, period=10, phase=3),
        Pod("b", 0.5, start=0, period=15, phase=11, node="real-1"),
        Pod("c", 0.1, start=37, period=10, phase=2, stop=82),  # ends at a measurement
        Pod("d", 1.0, start=64, period=10, phase=6),
    ]
    samples = _run(pods, range(30, 150, 10))
    for t, v in samples:
        assert abs(v * S - sum(p.used(t) for p in pods)) < 10, (t, v)
    for (t1, v1), (t2, v2) in pairwise(samples):
        assert t2 >= t1 and v2 >= v1
        if t2 == t1:
            assert v2 == v1
        else:
            truth = sum(p.used(t2) - p.used(t1) for p in pods) / S / (t2 - t1)
            assert abs((v2 - v1) / (t2 - t1) - truth) < 1e-6


def test_stale_samples_restarts_and_missing_stats() -> None:
    a = Sample(100, 10 * S, start=0)
    state = nodecpu.advance(None, {"a": a}, {"a"}, now=105)
    assert (state.time, state.core_ns) == (100, 10 * S)
    # A slower concurrent scrape's older sample changes nothing.
    older = nodecpu.advance(state, {"a": Sample(90, 9 * S, start=0)}, {"a"}, now=106)
    assert (older.time, older.core_ns) == (100, 10 * S)
    # The pod's stats are missing (its remote node did not answer): held, not read as idle.
    held = nodecpu.advance(state, {}, {"a"}, now=130)
    assert (held.time, held.core_ns) == (100, 10 * S)
    # Its counter restarted from 0 (a new pod cgroup): what it had counted stays.
    restarted = nodecpu.advance(held, {"a": Sample(110, 1 * S)}, {"a"}, now=131)
    assert (restarted.time, restarted.core_ns) == (110, 11 * S)
    # Gone: what it used stays in the node's counter, which now holds at the scrape's time.
    gone = nodecpu.advance(restarted, {}, set(), now=140)
    assert (gone.time, gone.core_ns, gone.curves) == (140, 11 * S, {})
