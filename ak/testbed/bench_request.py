"""Benchmark: CPU per API request, AK's client against leaner ones.

Most of AK's CPU per pod is spent making its ~6 requests. This measures what
one request costs the calling process on this machine, against one loopback
testbed API server, for the same GET and PATCH of one pod:

* ``ak``: AK's ``KubeClient`` (``ak/kube/http11.py`` over trio's TLS),
  sequential and 16 in flight;
* ``httpx``: the path AK used before, httpx's transport -> httpcore -> h11
  over trio's TLS, with the same headers and JSON decoding;
* ``stdlib``: Python's blocking ``http.client`` over ``ssl`` on one keep-alive
  connection, as a floor for HTTP/1.1 + TLS + JSON in CPython.

Prints a table; asserts nothing.

    python -m ak.testbed.bench_request [--requests 2000]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import resource
import ssl
import sys
import time
from collections.abc import Callable
from urllib.parse import urlparse

import httpx
import trio

from ak.core import codec
from ak.kube.client import KubeClient, path
from ak.kube.config import load_kubeconfig
from ak.kube.transport import transport
from ak.testbed.cluster import Cluster
from ak.testbed.testbed import Testbed

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "probe"},
    "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]},
}
WHERE = path("pods", namespace="default", name="probe")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _patch(i: int) -> dict[str, object]:
    return {"metadata": {"annotations": {"bench": str(i)}}}


async def _ak(cluster: Cluster, n: int, verb: str, in_flight: int) -> tuple[float, float]:
    client = KubeClient(load_kubeconfig(str(cluster.kubeconfig)), name="bench", qps=0)
    limiter = trio.CapacityLimiter(in_flight)

    async def one(i: int) -> None:
        async with limiter:
            if verb == "GET":
                await client.get(WHERE)
            else:
                await client.patch(WHERE, _patch(i))

    try:
        await client.get(WHERE)  # connections warm
        c0, t0 = _cpu(), time.monotonic()
        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(one, i)
        return (_cpu() - c0) / n, n / (time.monotonic() - t0)
    finally:
        await client.aclose()


async def _httpx(cluster: Cluster, n: int, verb: str, in_flight: int) -> tuple[float, float]:
    """The request path AK had before ``ak/kube/http11.py``: httpx's transport
    (httpcore's pool, h11) with AK's headers, read whole, JSON decoded."""
    config = load_kubeconfig(str(cluster.kubeconfig))
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    pool = transport(config.ssl_context, limits)
    headers = {"Accept": "application/json", "Content-Type": "application/merge-patch+json"}
    limiter = trio.CapacityLimiter(in_flight)
    timeout = httpx.Timeout(30, connect=10).as_dict()

    async def one(i: int) -> None:
        body = None if verb == "GET" else codec.dumps(_patch(i))
        request = httpx.Request(
            verb,
            config.server + WHERE,
            headers=headers,
            content=body,
            extensions={"timeout": timeout},
        )
        async with limiter:
            resp = await pool.handle_async_request(request)
            try:
                await resp.aread()
            finally:
                await resp.aclose()
        codec.loads(resp.content)

    try:
        await one(0)
        c0, t0 = _cpu(), time.monotonic()
        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(one, i)
        return (_cpu() - c0) / n, n / (time.monotonic() - t0)
    finally:
        await pool.aclose()


def _stdlib(cluster: Cluster, n: int, verb: str) -> tuple[float, float]:
    ctx = ssl.create_default_context(cafile=str(cluster.ca.pair.cert))
    ctx.load_cert_chain(str(cluster.admin.cert), str(cluster.admin.key))
    url = urlparse(cluster.server)
    conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=ctx)
    headers = {"Accept": "application/json", "Content-Type": "application/merge-patch+json"}

    def one(i: int) -> None:
        body = None if verb == "GET" else json.dumps(_patch(i))
        conn.request(verb, WHERE, body=body, headers=headers)
        codec.loads(conn.getresponse().read())

    one(0)
    c0, t0 = _cpu(), time.monotonic()
    for i in range(n):
        one(i)
    conn.close()
    return (_cpu() - c0) / n, n / (time.monotonic() - t0)


def run(n: int) -> list[tuple[str, str, float, float]]:
    rows: list[tuple[str, str, float, float]] = []
    with Testbed() as tb:
        cluster = tb.cluster("local")
        cluster.apply(POD, "default")
        for verb in ("GET", "PATCH"):
            cases: list[tuple[str, Callable[[], tuple[float, float]]]] = [
                ("ak, 1 in flight", functools.partial(trio.run, _ak, cluster, n, verb, 1)),
                ("ak, 16 in flight", functools.partial(trio.run, _ak, cluster, n, verb, 16)),
                ("httpx, 1 in flight", functools.partial(trio.run, _httpx, cluster, n, verb, 1)),
                ("httpx, 16 in flight", functools.partial(trio.run, _httpx, cluster, n, verb, 16)),
                ("stdlib http.client", functools.partial(_stdlib, cluster, n, verb)),
            ]
            for name, case in cases:
                cpu, rate = case()
                rows.append((verb, name, cpu, rate))
                print(f"{verb} {name}: {cpu * 1000:.2f} ms CPU, {rate:.0f}/s", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_request",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    print("verb | client | CPU per request (ms) | requests/s")
    for verb, name, cpu, rate in run(args.requests):
        print(f"{verb} | {name} | {cpu * 1000:.2f} | {rate:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
