"""What ``/pods``, ``/runningpods/``, ``/stats/summary`` and ``/metrics/resource`` show.

Pure functions over the informer caches and remote stats documents: remote
pods are reported under their LOCAL namespace, name and UID, since that is
what whoever asks this node knows them by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ak.core.labels import ANNOTATION_LOCAL_UID, LABEL_NAMESPACE
from ak.core.names import remote_namespace
from ak.core.timefmt import format_time, parse_time

Obj = dict[str, Any]


def pod_list(pods: Iterable[Obj]) -> Obj:
    """``/pods``: the pods bound to this node, as the API server has them."""
    items = sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}


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


def summary(
    node_name: str,
    started: datetime,
    now: datetime,
    remote_pods: Iterable[Obj],
    remote_summaries: Mapping[str, Obj | None],
) -> Obj:
    """``/stats/summary`` for this node.

    ``remote_summaries`` maps each remote node our pods run on to its own
    summary (None if it could not be read): our pods' entries are taken from
    there and renamed; pods without stats get an entry without usage. The
    node's usage is the sum of its pods'.
    """
    by_key: dict[tuple[str, str], Obj] = {}
    for node_summary in remote_summaries.values():
        for entry in (node_summary or {}).get("pods") or []:
            ref = entry.get("podRef") or {}
            by_key[(ref.get("namespace", ""), ref.get("name", ""))] = entry
    pods = []
    for remote in remote_pods:
        ref = local_ref(node_name, remote)
        if ref is None:
            continue
        meta = remote["metadata"]
        entry = by_key.get((meta["namespace"], meta["name"]))
        if entry is None:
            pods.append(_pod_stats_fallback(remote, ref))
        else:
            pods.append({**entry, "podRef": {"name": ref[1], "namespace": ref[0], "uid": ref[2]}})
    pods.sort(key=lambda p: (p["podRef"]["namespace"], p["podRef"]["name"]))
    stamp = format_time(now)
    cpu = [p.get("cpu") or {} for p in pods]
    memory = [p.get("memory") or {} for p in pods]
    node: Obj = {"nodeName": node_name, "startTime": format_time(started), "systemContainers": []}
    node_cpu = {
        "time": stamp,
        "usageNanoCores": _sum(c.get("usageNanoCores") for c in cpu),
        "usageCoreNanoSeconds": _sum(c.get("usageCoreNanoSeconds") for c in cpu),
    }
    node_memory = {
        "time": stamp,
        "usageBytes": _sum(m.get("usageBytes") for m in memory),
        "workingSetBytes": _sum(m.get("workingSetBytes") for m in memory),
        "rssBytes": _sum(m.get("rssBytes") for m in memory),
    }
    node["cpu"] = {k: v for k, v in node_cpu.items() if v is not None}
    node["memory"] = {k: v for k, v in node_memory.items() if v is not None}
    return {"node": node, "pods": pods}


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


def _millis(stamp: str | None, default: int) -> int:
    if not stamp:
        return default
    try:
        return int(parse_time(stamp).timestamp() * 1000)
    except ValueError:
        return default


def resource_metrics(stats: Obj, scrape_error: bool, now: datetime) -> str:
    """``/metrics/resource`` (Prometheus text 0.0.4) from a summary."""
    now_ms = int(now.timestamp() * 1000)
    families: dict[str, tuple[str, str, list[str]]] = {
        "container_cpu_usage_seconds_total": (
            "counter",
            "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
            [],
        ),
        "container_memory_working_set_bytes": (
            "gauge",
            "[STABLE] Current working set of the container in bytes",
            [],
        ),
        "container_start_time_seconds": (
            "gauge",
            "[STABLE] Start time of the container since unix epoch in seconds",
            [],
        ),
        "node_cpu_usage_seconds_total": (
            "counter",
            "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
            [],
        ),
        "node_memory_working_set_bytes": (
            "gauge",
            "[STABLE] Current working set of the node in bytes",
            [],
        ),
        "pod_cpu_usage_seconds_total": (
            "counter",
            "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
            [],
        ),
        "pod_memory_working_set_bytes": (
            "gauge",
            "[STABLE] Current working set of the pod in bytes",
            [],
        ),
        "scrape_error": (
            "gauge",
            "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
            [],
        ),
    }

    def add(name: str, labels: str, value: float, stamp: int | None = None) -> None:
        text = f"{value:.9g}" if isinstance(value, float) else str(value)
        families[name][2].append(
            f"{name}{labels} {text}" + (f" {stamp}" if stamp is not None else "")
        )

    node = stats.get("node") or {}
    if "usageCoreNanoSeconds" in (node.get("cpu") or {}):
        add(
            "node_cpu_usage_seconds_total",
            "",
            node["cpu"]["usageCoreNanoSeconds"] / 1e9,
            _millis(node["cpu"].get("time"), now_ms),
        )
    if "workingSetBytes" in (node.get("memory") or {}):
        add(
            "node_memory_working_set_bytes",
            "",
            node["memory"]["workingSetBytes"],
            _millis(node["memory"].get("time"), now_ms),
        )
    for pod in stats.get("pods") or []:
        ref = pod["podRef"]
        pl = _labels(namespace=ref["namespace"], pod=ref["name"])
        cpu, mem = pod.get("cpu") or {}, pod.get("memory") or {}
        if "usageCoreNanoSeconds" in cpu:
            add(
                "pod_cpu_usage_seconds_total",
                pl,
                cpu["usageCoreNanoSeconds"] / 1e9,
                _millis(cpu.get("time"), now_ms),
            )
        if "workingSetBytes" in mem:
            add(
                "pod_memory_working_set_bytes",
                pl,
                mem["workingSetBytes"],
                _millis(mem.get("time"), now_ms),
            )
        for c in pod.get("containers") or []:
            cl = _labels(container=c["name"], namespace=ref["namespace"], pod=ref["name"])
            ccpu, cmem = c.get("cpu") or {}, c.get("memory") or {}
            if "usageCoreNanoSeconds" in ccpu:
                add(
                    "container_cpu_usage_seconds_total",
                    cl,
                    ccpu["usageCoreNanoSeconds"] / 1e9,
                    _millis(ccpu.get("time"), now_ms),
                )
            if "workingSetBytes" in cmem:
                add(
                    "container_memory_working_set_bytes",
                    cl,
                    cmem["workingSetBytes"],
                    _millis(cmem.get("time"), now_ms),
                )
            if c.get("startTime"):
                add("container_start_time_seconds", cl, _millis(c["startTime"], 0) / 1000)
    add("scrape_error", "", 1 if scrape_error else 0)
    lines = []
    for name, (kind, help_text, samples) in families.items():
        if samples:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(lines) + "\n"
