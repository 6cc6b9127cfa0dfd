"""Benchmark: the local cluster reaching a pod on the AK node, against direct.

One HTTP server (``webhook http :8080``) in a real container on a remote real
node. The same requests go to it two ways, in the same run:

* ``direct``: to the remote pod's IP (the sandbox routes the node's pod
  bridge), i.e. what the server itself costs, with no AK in the path;
* ``via AK``: to the pod's local address (``--pod-address-range``): AK accepts,
  opens a port-forward to the remote pod through the remote API server, and
  relays; the remote kubelet then connects to the pod.

For each: sequential requests on one keep-alive connection (p50/p99 latency,
requests/s), sequential requests each on a new connection (what a client
without keep-alive pays: AK opens one port-forward per connection), and
``--parallel`` keep-alive connections at once (requests/s). AK's CPU per
request comes from /proc. Prints a table and writes JSON; asserts nothing.
Runs in the testbed sandbox (a real node needs it):

    python -m tests.testbed.sandbox -- .venv/bin/python -m tests.testbed.bench_reach
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ak.core.names import remote_namespace
from tests.testbed import images, sandbox
from tests.testbed.akproc import AKProcess, real_node_args
from tests.testbed.bench_measures import _proc_stats
from tests.testbed.cluster import Cluster
from tests.testbed.procs import wait_for
from tests.testbed.testbed import Testbed

NS = "reach"
PORT = 8080
RANGE = "10.250.200.0/24"


def _server(local: Cluster, node: str) -> None:
    local.kubectl("create", "namespace", NS)
    local.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": "web",
                        "image": images.WEBHOOK,
                        "imagePullPolicy": "Never",
                        "command": ["/bin/webhook", "http", f":{PORT}"],
                        "ports": [{"containerPort": PORT}],
                        "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 1},
                    }
                ],
            },
        },
        NS,
    )


def _ready_ips(local: Cluster, remote_ns: str, remote: Cluster) -> tuple[str, str]:
    def ready() -> bool:
        pod = local.get_json(f"/api/v1/namespaces/{NS}/pods/web")
        conds = pod.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    wait_for("the server pod Ready", ready, 120)
    address = local.get_json(f"/api/v1/namespaces/{NS}/pods/web")["status"]["podIP"]
    direct = remote.get_json(f"/api/v1/namespaces/{remote_ns}/pods/web")["status"]["podIP"]
    return direct, address


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def _get(conn: http.client.HTTPConnection) -> None:
    conn.request("GET", "/")
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200 or not body.startswith(b"hello"):
        raise RuntimeError(f"unexpected answer {resp.status}: {body[:100]!r}")


def keepalive(ip: str, n: int) -> dict[str, float]:
    conn = http.client.HTTPConnection(ip, PORT, timeout=30)
    _get(conn)  # connected (and, via AK, the port-forward opened) before timing
    samples = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        _get(conn)
        samples.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    conn.close()
    return {**_percentiles(samples), "requests_per_s": n / total}


def new_connections(ip: str, n: int) -> dict[str, float]:
    samples = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        conn = http.client.HTTPConnection(ip, PORT, timeout=30)
        _get(conn)
        conn.close()
        samples.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    return {**_percentiles(samples), "requests_per_s": n / total}


def parallel(ip: str, n: int, clients: int) -> dict[str, float]:
    per = n // clients
    errors: list[BaseException] = []

    def one() -> None:
        try:
            conn = http.client.HTTPConnection(ip, PORT, timeout=30)
            for _ in range(per):
                _get(conn)
            conn.close()
        except BaseException as e:  # reported after the join
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = time.perf_counter() - start
    if errors:
        raise errors[0]
    return {"requests_per_s": per * clients / total}


def _measure(ip: str, n: int, clients: int, ak_pid: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    measures: list[tuple[str, Callable[[], dict[str, float]], int]] = [
        ("keepalive", partial(keepalive, ip, n), n),
        ("new_connection", partial(new_connections, ip, n // 4), n // 4),
        ("parallel", partial(parallel, ip, n, clients), n),
    ]
    for name, fn, count in measures:
        cpu0 = _proc_stats(ak_pid)[1] if ak_pid else 0.0
        out[name] = fn()
        if ak_pid:
            out[name]["ak_cpu_ms_per_request"] = (_proc_stats(ak_pid)[1] - cpu0) * 1000 / count
    return out


def run(n: int, clients: int) -> dict[str, Any]:
    with Testbed() as tb:
        local = tb.cluster("local")
        remote = tb.cluster("remote")
        remote.add_real_node("reach-real")
        ak = AKProcess(
            local,
            remote,
            "ak-reach",
            node_ip=sandbox.HOST_IP,
            extra_args=[*real_node_args(local), f"--pod-address-range={RANGE}", "--log-level=info"],
        )
        ak.start()
        try:
            wait_for("AK's node Ready", ak.node_ready, 120, [ak.proc] if ak.proc else [])
            _server(local, ak.node_name)
            direct_ip, address = _ready_ips(local, remote_namespace(ak.node_name, NS), remote)
            return {
                "requests": n,
                "parallel_clients": clients,
                "direct": {"address": direct_ip, **_measure(direct_ip, n, clients, None)},
                "via_ak": {"address": address, **_measure(address, n, clients, ak.pid)},
            }
        finally:
            ak.stop()


def _table(r: dict[str, Any]) -> str:
    rows = [
        "path | keep-alive p50 / p99 ms | keep-alive req/s | new connection p50 / p99 ms"
        f" | new connection req/s | {r['parallel_clients']} parallel req/s"
        " | AK CPU ms/req (keep-alive / new / parallel)"
    ]
    for name in ("direct", "via_ak"):
        m = r[name]
        k, c, p = m["keepalive"], m["new_connection"], m["parallel"]
        cpu = (
            " / ".join(f"{x['ak_cpu_ms_per_request']:.2f}" for x in (k, c, p))
            if "ak_cpu_ms_per_request" in k
            else "-"
        )
        rows.append(
            f"{name} ({m['address']}) | {k['p50_ms']:.2f} / {k['p99_ms']:.2f} | "
            f"{k['requests_per_s']:.0f} | {c['p50_ms']:.2f} / {c['p99_ms']:.2f} | "
            f"{c['requests_per_s']:.0f} | {p['requests_per_s']:.0f} | {cpu}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_reach",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per measure")
    parser.add_argument("--parallel", type=int, default=8, help="connections at once")
    parser.add_argument("--json", default="bench-reach.json", help="where to write the figures")
    args = parser.parse_args(argv)
    if not sandbox.inside():
        print(
            "run inside the testbed sandbox: python -m tests.testbed.sandbox -- ...",
            file=sys.stderr,
        )
        return 2
    results = run(args.requests, args.parallel)
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(_table(results))
    print(f"written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
