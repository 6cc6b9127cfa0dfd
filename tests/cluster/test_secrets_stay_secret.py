"""No Secret value, token or credential leaks into AK's log, Events or metrics."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from ak.core.names import remote_namespace
from tests.cluster.util import pod, pods, running, wait_until
from tests.conftest import wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def test_secret_values_tokens_and_keys_stay_out_of_logs_events_metrics(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    name, ns = f"ak-sec-{uuid.uuid4().hex[:4]}", f"sec-{uuid.uuid4().hex[:4]}"
    value = f"s3cr3t-{uuid.uuid4().hex}"
    ak = AKProcess(local_cluster, remote_cluster, name, metrics=True)  # logs at debug level
    local_cluster.kubectl("create", "namespace", ns)
    local_cluster.kubectl(
        "-n", ns, "create", "secret", "generic", "creds", f"--from-literal=password={value}"
    )
    ak.start()
    try:
        wait_for_node_ready(ak)
        container = {
            "name": "c",
            "image": "x",
            "env": [
                {"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}
            ],
        }
        volumes = [{"name": "v", "secret": {"secretName": "creds"}}]
        local_cluster.apply(pod("user", name, containers=[container], volumes=volumes), ns)
        wait_until("pod Running", lambda: running(pods(local_cluster, ns)))
        rns = remote_namespace(name, ns)
        identity = remote_cluster.get_json(f"/api/v1/namespaces/{rns}/secrets/ak-identity-user")
        tokens = [
            base64.b64decode(v).decode()
            for k, v in identity["data"].items()
            if k.startswith("token")
        ]
        assert tokens, "the pod should have a service-account token"
        # A pod AK refuses, so AK writes a Warning Event mentioning the pod.
        local_cluster.apply(pod("refused", name, hostNetwork=True), ns)
        wait_until("refusal recorded", lambda: "refused" in ak.log.read_text())
        key = (local_cluster.pki_dir / f"system_node_{name}.key").read_text()
        needles = {
            "secret value": value,
            "secret value (base64)": base64.b64encode(value.encode()).decode(),
            "client key": "".join(key.splitlines()[1:-1])[:40],
            **{f"token {i}": t for i, t in enumerate(tokens)},
        }
        haystacks = {
            "log": ak.log.read_text(),
            "events": local_cluster.kubectl("-n", ns, "get", "events", "-o", "json").stdout,
            "metrics": httpx.get(f"http://127.0.0.1:{ak.metrics_port}/metrics").text,
        }
        for where, text in haystacks.items():
            for what, needle in needles.items():
                assert needle not in text, f"{what} found in AK's {where}"
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", name, "--wait=false", check=False)
