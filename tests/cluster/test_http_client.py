"""AK's HTTP/1.1 engine (``ak/wire/http1.py``) under KubeClient against a real API server:
gzip and chunked bodies as the API server writes them, many requests in
flight over a few connections, and connections an API server restart broke."""

from __future__ import annotations

import pytest
import trio

from ak.kube.client import KubeClient, path
from ak.kube.config import load_kubeconfig
from ak.kube.errors import NotFound
from tests.conftest import ClusterFactory
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def _client(cluster: Cluster) -> KubeClient:
    return KubeClient(load_kubeconfig(str(cluster.kubeconfig)), name="test", qps=0)


async def test_big_bodies_come_gzipped_and_are_read_whole(local_cluster: Cluster) -> None:
    # The API server gzips responses over 128 KiB when asked to (AK asks).
    data = {f"k{i}": "x" * 1000 for i in range(300)}
    where = path("configmaps", namespace="default", name="big-body")
    client = _client(local_cluster)
    try:
        await client.create(
            path("configmaps", namespace="default"),
            {"metadata": {"name": "big-body"}, "data": data},
        )
        got = await client.get(where)
        assert got["data"] == data
        raw = await client.engine.request(
            "GET", where, {"Accept": "application/json", "Accept-Encoding": "gzip"}, None, 30
        )
        assert raw.headers.get("content-encoding") == "gzip"
        assert len(raw.content) > 300_000  # decoded
    finally:
        await client.delete(where)
        await client.aclose()


async def test_many_requests_in_flight_share_few_connections(local_cluster: Cluster) -> None:
    client = _client(local_cluster)
    seen: list[str] = []
    try:

        async def one(i: int) -> None:
            try:
                await client.get(path("configmaps", namespace="default", name=f"none-{i}"))
            except NotFound:
                seen.append("404")

        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(one, i)
        assert seen == ["404"] * 200
        assert 1 <= len(client.engine._idle) <= 8  # max_concurrency
    finally:
        await client.aclose()


async def test_connections_broken_by_an_api_server_restart_are_replaced(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("http-restart")
    client = _client(cluster)
    try:
        await client.get("/api/v1/namespaces/default")
        assert len(client.engine._idle) == 1
        await trio.to_thread.run_sync(cluster.restart, "kube-apiserver")
        # The idle connection's server is gone: the next request must not fail on it.
        got = await client.get("/api/v1/namespaces/default")
        assert got["metadata"]["name"] == "default"
    finally:
        await client.aclose()
