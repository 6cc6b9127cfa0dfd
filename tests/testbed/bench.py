"""Benchmark: what AK adds to a pod's start, how many pods/s it carries, what it costs.

Runs on testbed clusters (remote nodes simulated by kwok, no stage delays):
AK as a real process between them, the benchmark's own watches on both sides
for timestamps, AK's /metrics for its request counts, /proc for its footprint.
The baseline ("direct") is the same pods created straight on the remote API
server in the same run. Prints a table and writes JSON; asserts nothing.

    python -m tests.testbed.bench --pods 100 --pods 1000 [--idle 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import trio

from tests.testbed.akproc import AKProcess
from tests.testbed.bench_phases import NODE, Bench
from tests.testbed.testbed import Testbed


def _table(results: dict[str, Any]) -> str:
    nan = float("nan")
    rows = [
        "  pods | added latency, ms: create p50 p90 p99 max | running p50 p99 | "
        "pods/s AK direct ratio | AK CPU ms/pod | machine CPU ms/pod AK direct, busy | "
        "RSS MB | idle CPU % | restart s (ready s), re-created"
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
            f"{r.get('ak_cpu_s_per_pod_lifecycle', nan) * 1000:5.1f} | "
            f"{r.get('ak_machine_cpu_ms_per_pod_to_running', nan):5.1f} "
            f"{r.get('direct_machine_cpu_ms_per_pod_to_running', nan):5.1f}, "
            f"{r.get('ak_machine_busy_fraction', nan):.2f} "
            f"{r.get('direct_machine_busy_fraction', nan):.2f} | "
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
    parser.add_argument(
        "--memtrace",
        help="directory for AK's live allocations with N pods settled (tracemalloc; slows AK)",
    )
    parser.add_argument(
        "--no-token",
        action="store_true",
        help="pods without a service-account token (automountServiceAccountToken: false)",
    )
    args = parser.parse_args(argv)
    sizes = args.pods or [100, 1000]
    memtrace = Path(args.memtrace).resolve() / "ak-settled.txt" if args.memtrace else None
    if memtrace:
        memtrace.parent.mkdir(parents=True, exist_ok=True)
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
            command=[sys.executable, "-m", "tests.testbed.memtrace", str(memtrace)]
            if memtrace
            else None,
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
        bench.memtrace = memtrace
        bench.token = not args.no_token
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
