"""AK's own endpoints: Prometheus metrics and health probes."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.cluster.util import pod, pods, running, wait_until
from tests.conftest import wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (label order ignored)."""
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        metric, _, rest = series.partition("{")
        if metric != name:
            continue
        got = dict(kv.split("=", 1) for kv in rest.rstrip("}").split(",") if kv)
        if {k: v.strip('"') for k, v in got.items()} == labels:
            return float(value)
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_health_and_ready(local_cluster: Cluster, remote_cluster: Cluster) -> None:
    ak = AKProcess(local_cluster, remote_cluster, f"ak-m-{uuid.uuid4().hex[:4]}", metrics=True)
    ns = f"m-{uuid.uuid4().hex[:4]}"
    local_cluster.kubectl("create", "namespace", ns)
    ak.start()
    base = f"http://127.0.0.1:{ak.metrics_port}"
    try:
        wait_for_node_ready(ak)
        wait_until("readyz", lambda: httpx.get(f"{base}/readyz").status_code == 200)
        assert httpx.get(f"{base}/healthz").text == "ok"
        local_cluster.apply(pod("measured", ak.node_name), ns)
        wait_until("Running", lambda: running(pods(local_cluster, ns)))

        def scraped_with_latency() -> str | None:
            t = httpx.get(f"{base}/metrics").text
            ok = "ak_pod_status_latency_seconds_count" in t
            return t if ok and sample(t, "ak_pod_status_latency_seconds_count") >= 1 else None

        text = wait_until("latency samples", scraped_with_latency)
        assert sample(text, "ak_pod_create_latency_seconds_count") == 1
        created = {"cluster": "remote", "verb": "POST", "code": "201"}
        assert sample(text, "ak_api_requests_total", resource="pods", **created) == 1
        assert sample(text, "ak_api_requests_total", resource="namespaces", **created) == 1
        assert sample(text, "ak_pods", cluster="local") == 1
        assert (
            sample(
                text,
                "ak_build_info",
                version="0.1.0",
                python=__import__("platform").python_version(),
            )
            == 1
        )
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", ak.node_name, "--wait=false", check=False)
