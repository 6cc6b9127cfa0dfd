"""Benchmark: CPU per API request, AK's engine against other clients.

Most of AK's CPU per pod is spent making its ~6 requests. This measures what
one request costs the calling process on this machine, against one loopback
testbed API server, for the same GET and PATCH of one pod, each client with
the same headers, reading the body whole and decoding the JSON:

* ``ak``: AK's ``KubeClient`` over its engine (``ak/wire/http1.py``: llhttp
  through httptools, trio's TLS), sequential and 16 in flight;
* ``httpx over ak's engine``: httpx's client API on ``ak/wire/httpx_transport.py``;
* ``h11``: the same pool and TLS with h11 doing the framing (bench-only);
* ``httpx (httpcore)``: httpx's own transport -> httpcore -> h11;
* ``stdlib``: Python's blocking ``http.client`` over ``ssl`` on one keep-alive
  connection, as a floor for HTTP/1.1 + TLS + JSON in CPython.

Prints a table; asserts nothing.

    python -m tests.testbed.bench_request [--requests 2000]
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

import h11
import httpx
import trio

from ak.core import codec
from ak.kube.client import KubeClient, path
from ak.kube.config import ClusterConfig, load_kubeconfig
from ak.wire.http1 import Engine
from ak.wire.httpx_transport import EngineTransport
from tests.testbed.cluster import Cluster
from tests.testbed.testbed import Testbed

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "probe"},
    "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]},
}
WHERE = path("pods", namespace="default", name="probe")
HEADERS = {
    "User-Agent": "bench",
    "Accept": "application/json",
    "Accept-Encoding": "gzip",
    "Content-Type": "application/merge-patch+json",
}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _patch(i: int) -> dict[str, object]:
    return {"metadata": {"annotations": {"bench": str(i)}}}


async def _timed(n: int, in_flight: int, one: Callable[[int], object]) -> tuple[float, float]:
    """CPU per call and calls per second of ``one`` (async), ``in_flight`` at once."""
    limiter = trio.CapacityLimiter(in_flight)

    async def run(i: int) -> None:
        async with limiter:
            await one(i)  # type: ignore[misc]

    await run(0)  # connections warm
    c0, t0 = _cpu(), time.monotonic()
    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(run, i)
    return (_cpu() - c0) / n, n / (time.monotonic() - t0)


async def _ak(cluster: Cluster, n: int, verb: str, in_flight: int) -> tuple[float, float]:
    client = KubeClient(load_kubeconfig(str(cluster.kubeconfig)), name="bench", qps=0)

    async def one(i: int) -> None:
        if verb == "GET":
            await client.get(WHERE)
        else:
            await client.patch(WHERE, _patch(i))

    try:
        return await _timed(n, in_flight, one)
    finally:
        await client.aclose()


async def _httpx_over_engine(
    cluster: Cluster, n: int, verb: str, in_flight: int
) -> tuple[float, float]:
    config = load_kubeconfig(str(cluster.kubeconfig))
    engine = Engine(config.server, config.ssl_context, max_idle=8)
    client = httpx.AsyncClient(
        base_url=config.server, headers=HEADERS, timeout=30, transport=EngineTransport(engine)
    )
    return await _httpx_timed(client, n, verb, in_flight)


async def _httpx(cluster: Cluster, n: int, verb: str, in_flight: int) -> tuple[float, float]:
    """httpx as it comes: its transport (httpcore's pool, h11)."""
    config = load_kubeconfig(str(cluster.kubeconfig))
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    client = httpx.AsyncClient(
        base_url=config.server,
        headers=HEADERS,
        timeout=30,
        transport=httpx.AsyncHTTPTransport(verify=config.ssl_context, limits=limits),
    )
    return await _httpx_timed(client, n, verb, in_flight)


async def _httpx_timed(
    client: httpx.AsyncClient, n: int, verb: str, in_flight: int
) -> tuple[float, float]:
    async def one(i: int) -> None:
        body = None if verb == "GET" else codec.dumps(_patch(i))
        resp = await client.request(verb, WHERE, content=body)
        codec.loads(resp.content)

    try:
        return await _timed(n, in_flight, one)
    finally:
        await client.aclose()


class _H11Pool:
    """The engine's pool and TLS with h11 doing the framing (bench-only)."""

    def __init__(self, config: ClusterConfig) -> None:
        self.engine = Engine(config.server, config.ssl_context)
        self.idle: list[tuple[trio.abc.Stream, h11.Connection]] = []

    async def request(self, method: str, body: bytes | None) -> bytes:
        if self.idle:
            stream, conn = self.idle.pop()
        else:
            stream = (await self.engine._connect()).stream
            conn = h11.Connection(h11.CLIENT)
        headers = [("Host", self.engine.authority), *HEADERS.items()]
        if body is not None:
            headers.append(("Content-Length", str(len(body))))
        out = conn.send(h11.Request(method=method, target=WHERE, headers=headers))
        if body is not None:
            out += conn.send(h11.Data(data=body))
        out += conn.send(h11.EndOfMessage())
        await stream.send_all(out)
        content = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(65536)))
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        conn.start_next_cycle()
        self.idle.append((stream, conn))
        return bytes(content)

    async def aclose(self) -> None:
        for stream, _ in self.idle:
            await stream.aclose()


async def _h11(cluster: Cluster, n: int, verb: str, in_flight: int) -> tuple[float, float]:
    pool = _H11Pool(load_kubeconfig(str(cluster.kubeconfig)))

    async def one(i: int) -> None:
        body = None if verb == "GET" else codec.dumps(_patch(i))
        codec.loads(await pool.request(verb, body))

    try:
        return await _timed(n, in_flight, one)
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
            cases: list[tuple[str, Callable[[], tuple[float, float]]]] = []
            for name, fn in (
                ("ak", _ak),
                ("httpx over ak's engine", _httpx_over_engine),
                ("h11 on ak's pool", _h11),
                ("httpx (httpcore)", _httpx),
            ):
                for k in (1, 16):
                    run_k: Callable[[], tuple[float, float]] = functools.partial(
                        trio.run, fn, cluster, n, verb, k
                    )
                    cases.append((f"{name}, {k} in flight", run_k))
            cases.append(("stdlib http.client", functools.partial(_stdlib, cluster, n, verb)))
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
