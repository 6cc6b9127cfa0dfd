"""What the benchmark reads: when it saw each pod reach each stage, AK's
footprint from /proc and its API request counts from /metrics."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ak.core.types import Obj


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


def _machine_busy() -> float:
    """CPU seconds this machine has spent busy (all cores, every process: API
    servers, etcd, kwok, scheduler, controllers, AK and the benchmark)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _metrics(port: int) -> dict[tuple[str, str, str], float]:
    """AK's API request counters: (cluster, verb, resource) -> count."""
    out: dict[tuple[str, str, str], float] = {}
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("ak_api_requests_total{"):
            series, _, value = line.rpartition(" ")
            labels = dict(
                kv.split("=", 1) for kv in series[len("ak_api_requests_total{") : -1].split(",")
            )
            key = (
                labels["cluster"].strip('"'),
                labels["verb"].strip('"'),
                labels["resource"].strip('"'),
            )
            out[key] = out.get(key, 0) + float(value)
    return out


def _syncs(port: int) -> dict[str, float]:
    """AK's work-queue syncs so far, by queue (every result)."""
    out: dict[str, float] = {}
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("ak_sync_total{"):
            series, _, value = line.rpartition(" ")
            labels = dict(kv.split("=", 1) for kv in series[len("ak_sync_total{") : -1].split(","))
            queue = labels["queue"].strip('"')
            out[queue] = out.get(queue, 0) + float(value)
    return out


def _diff(
    after: dict[tuple[str, str, str], float], before: dict[tuple[str, str, str], float]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, v in after.items():
        d = v - before.get(key, 0)
        if d:
            out[" ".join(key)] = d
    return out
