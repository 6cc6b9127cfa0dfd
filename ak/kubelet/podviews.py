"""What ``/pods``, ``/runningpods/``, ``/stats/summary`` and ``/metrics/resource`` show.

Pure functions over the informer caches and remote stats documents: remote
pods are reported under their LOCAL namespace, name and UID, since that is
what whoever asks this node knows them by.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ak.core.labels import ANNOTATION_LOCAL_UID, LABEL_NAMESPACE
from ak.core.names import remote_namespace
from ak.core.timefmt import format_time, parse_time
from ak.core.types import Obj
from ak.kubelet import nodecpu


def pod_list(pods: Iterable[Obj]) -> Obj:
    """``/pods``: the pods bound to this node, as the API server has them."""
    items = sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}


_STATUS_LISTS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")


def never_ran(pod: Obj, container: str) -> str | None:
    """Why ``container`` of local ``pod`` has no logs, if its status says it
    never ran: terminated with no container ID and no earlier run, as AK
    reports a container the remote refused. The kubelet answers "is
    terminated" then; the reason and message say why. None: ask the remote."""
    status = pod.get("status") or {}
    for key in _STATUS_LISTS:
        for entry in status.get(key) or []:
            if entry.get("name") != container:
                continue
            terminated = (entry.get("state") or {}).get("terminated")
            if (
                terminated is None
                or entry.get("containerID")
                or terminated.get("containerID")
                or (entry.get("lastState") or {}).get("terminated")
            ):
                return None
            why = ": ".join(x for x in (terminated.get("reason"), terminated.get("message")) if x)
            name = pod["metadata"]["name"]
            return f'container "{container}" in pod "{name}" is terminated' + (
                f": {why}" if why else ""
            )
    return None


def local_ref(node_name: str, remote: Obj) -> tuple[str, str, str] | None:
    """(namespace, name, uid) of the local pod a remote pod runs for, or None."""
    meta = remote.get("metadata") or {}
    ns = (meta.get("labels") or {}).get(LABEL_NAMESPACE)
    if not ns or remote_namespace(node_name, ns) != meta.get("namespace"):
        return None
    uid = (meta.get("annotations") or {}).get(ANNOTATION_LOCAL_UID, "")
    return ns, meta["name"], uid


def _running(remote: Obj) -> bool:
    statuses = (remote.get("status") or {}).get("containerStatuses") or []
    return any("running" in (s.get("state") or {}) for s in statuses)


def running_pods(node_name: str, remote_pods: Iterable[Obj]) -> Obj:
    """``/runningpods/``: pods with a running container, as a runtime would list them."""
    items: list[Obj] = []
    for remote in remote_pods:
        ref = local_ref(node_name, remote)
        if ref is None or not _running(remote):
            continue
        ns, name, uid = ref
        containers = [
            {"name": s["name"], "image": s.get("image", "")}
            for s in (remote.get("status") or {}).get("containerStatuses") or []
            if "running" in (s.get("state") or {})
        ]
        items.append(
            {
                "metadata": {"name": name, "namespace": ns, "uid": uid, "creationTimestamp": None},
                "spec": {"containers": containers},
                "status": {},
            }
        )
    items.sort(key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}


# --- stats --------------------------------------------------------------------------


def _sum(values: Iterable[float | int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return int(sum(present)) if present else None


def _seconds(stamp: str | None) -> float | None:
    """A stats timestamp in seconds since the epoch; None if absent or unreadable."""
    if not stamp:
        return None
    try:
        return parse_time(stamp).timestamp()
    except ValueError:
        return None


def _pod_stats_fallback(remote: Obj, ref: tuple[str, str, str]) -> Obj:
    status = remote.get("status") or {}
    containers = []
    for s in status.get("containerStatuses") or []:
        running = (s.get("state") or {}).get("running") or {}
        entry: Obj = {"name": s["name"]}
        if running.get("startedAt"):
            entry["startTime"] = running["startedAt"]
        containers.append(entry)
    out: Obj = {
        "podRef": {"name": ref[1], "namespace": ref[0], "uid": ref[2]},
        "containers": containers,
    }
    if status.get("startTime"):
        out["startTime"] = status["startTime"]
    return out


def _cpu_sample(entry: Obj) -> nodecpu.Sample | None:
    """A pod's cumulative CPU as its remote kubelet measured it, if it has one with a time."""
    cpu = entry.get("cpu") or {}
    time = _seconds(cpu.get("time"))
    if time is None or cpu.get("usageCoreNanoSeconds") is None:
        return None
    return nodecpu.Sample(time, int(cpu["usageCoreNanoSeconds"]), _seconds(entry.get("startTime")))


def summary(
    node_name: str,
    started: datetime,
    now: datetime,
    remote_pods: Iterable[Obj],
    remote_summaries: Mapping[str, Obj | None],
    *,
    node_cpu: nodecpu.NodeCPU | None = None,
) -> tuple[Obj, nodecpu.NodeCPU]:
    """``/stats/summary`` for this node, and its CPU counter for the next call.

    ``remote_summaries`` maps each remote node our pods run on to its own
    summary (None if it could not be read): our pods' entries are taken from
    there and renamed; pods without stats get an entry without usage. The
    node's usage is the sum of its pods', at one time (see ``nodecpu``):
    ``node_cpu`` is what the previous call returned.
    """
    by_key: dict[tuple[str, str], Obj] = {}
    for node_summary in remote_summaries.values():
        for entry in (node_summary or {}).get("pods") or []:
            ref = entry.get("podRef") or {}
            by_key[(ref.get("namespace", ""), ref.get("name", ""))] = entry
    pods = []
    samples: dict[str, nodecpu.Sample] = {}
    alive: set[str] = set()
    for remote in remote_pods:
        ref = local_ref(node_name, remote)
        if ref is None:
            continue
        meta = remote["metadata"]
        key = meta.get("uid") or f"{meta['namespace']}/{meta['name']}"
        alive.add(key)
        entry = by_key.get((meta["namespace"], meta["name"]))
        if entry is None:
            pods.append(_pod_stats_fallback(remote, ref))
            continue
        pods.append({**entry, "podRef": {"name": ref[1], "namespace": ref[0], "uid": ref[2]}})
        sample = _cpu_sample(entry)
        if sample is not None:
            samples[key] = sample
    pods.sort(key=lambda p: (p["podRef"]["namespace"], p["podRef"]["name"]))
    node_cpu = nodecpu.advance(node_cpu, samples, alive, now.timestamp())
    # CPU and memory carry the same time: metrics-server keeps one time per
    # node, the memory sample's, and rates the CPU counter over it.
    stamp = format_time(datetime.fromtimestamp(node_cpu.time, UTC))
    cpu = [p.get("cpu") or {} for p in pods]
    memory = [p.get("memory") or {} for p in pods]
    node: Obj = {"nodeName": node_name, "startTime": format_time(started), "systemContainers": []}
    node_cpu_stats: Obj = {}
    if samples or node_cpu.core_ns:
        node_cpu_stats = {
            "time": stamp,
            "usageNanoCores": _sum(c.get("usageNanoCores") for c in cpu),
            "usageCoreNanoSeconds": node_cpu.core_ns,
        }
    node_memory: Obj = {
        "usageBytes": _sum(m.get("usageBytes") for m in memory),
        "workingSetBytes": _sum(m.get("workingSetBytes") for m in memory),
        "rssBytes": _sum(m.get("rssBytes") for m in memory),
    }
    if any(v is not None for v in node_memory.values()):
        node_memory["time"] = stamp
    node["cpu"] = {k: v for k, v in node_cpu_stats.items() if v is not None}
    node["memory"] = {k: v for k, v in node_memory.items() if v is not None}
    return {"node": node, "pods": pods}, node_cpu


# --- /metrics/resource ------------------------------------------------------------------
# The real kubelet's resource metrics collector, by name, type, labels and HELP
# text: metrics-server and `kubectl top` read this endpoint. Each sample carries
# the time its value was measured (its stats' own time); a value without one
# is left out, since a rate over it would be a guess. container_start_time_seconds
# has no timestamp, as the kubelet gives it none.

_CONTAINER = ("container", "namespace", "pod")
_POD = ("namespace", "pod")


def _families() -> dict[str, CounterMetricFamily | GaugeMetricFamily]:
    """Every family this endpoint may show, in the order it shows them (by name)."""

    def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
        return CounterMetricFamily(name, f"[STABLE] {doc}", labels=labels)

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, f"[STABLE] {doc}", labels=labels)

    families: list[CounterMetricFamily | GaugeMetricFamily] = [
        counter(
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the container in core-seconds",
            _CONTAINER,
        ),
        gauge(
            "container_memory_working_set_bytes",
            "Current working set of the container in bytes",
            _CONTAINER,
        ),
        gauge(
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds",
            _CONTAINER,
        ),
        counter(
            "node_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the node in core-seconds",
        ),
        gauge("node_memory_working_set_bytes", "Current working set of the node in bytes"),
        counter(
            "pod_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the pod in core-seconds",
            _POD,
        ),
        gauge("pod_memory_working_set_bytes", "Current working set of the pod in bytes", _POD),
        gauge(
            "scrape_error",
            "1 if there was an error while getting container metrics, 0 otherwise",
        ),
    ]
    # A counter family's name drops "_total" (it comes back on the exposition).
    return {f.name + ("_total" if f.type == "counter" else ""): f for f in families}


class _ResourceMetrics(Collector):
    """One summary as the kubelet's resource metrics: the samples exist for one scrape."""

    def __init__(self, stats: Obj, scrape_error: bool) -> None:
        self.stats = stats
        self.scrape_error = scrape_error

    def collect(self) -> Iterator[Metric]:
        families = _families()

        def add(name: str, labels: list[str], stats: Obj, field: str, unit: float) -> None:
            time = _seconds(stats.get("time"))
            if field in stats and time is not None:
                families[name].add_metric(labels, stats[field] / unit, timestamp=time)

        def cpu(name: str, labels: list[str], stats: Obj) -> None:
            add(name, labels, stats, "usageCoreNanoSeconds", 1e9)

        def memory(name: str, labels: list[str], stats: Obj) -> None:
            add(name, labels, stats, "workingSetBytes", 1)

        node = self.stats.get("node") or {}
        cpu("node_cpu_usage_seconds_total", [], node.get("cpu") or {})
        memory("node_memory_working_set_bytes", [], node.get("memory") or {})
        for pod in self.stats.get("pods") or []:
            ns, name = pod["podRef"]["namespace"], pod["podRef"]["name"]
            cpu("pod_cpu_usage_seconds_total", [ns, name], pod.get("cpu") or {})
            memory("pod_memory_working_set_bytes", [ns, name], pod.get("memory") or {})
            for c in pod.get("containers") or []:
                labels = [c["name"], ns, name]
                cpu("container_cpu_usage_seconds_total", labels, c.get("cpu") or {})
                memory("container_memory_working_set_bytes", labels, c.get("memory") or {})
                started = _seconds(c.get("startTime"))
                if started is not None:
                    families["container_start_time_seconds"].add_metric(labels, started)
        families["scrape_error"].add_metric([], 1 if self.scrape_error else 0)
        # A family without samples is left out, as the kubelet leaves it out.
        return (f for f in families.values() if f.samples)


def resource_metrics(stats: Obj, scrape_error: bool) -> bytes:
    """``/metrics/resource`` (Prometheus text 0.0.4) from a summary.

    A private registry: AK's own metrics (``/metrics`` on the metrics port)
    stay out, as the kubelet keeps its own out of this endpoint.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ResourceMetrics(stats, scrape_error))
    return generate_latest(registry)
