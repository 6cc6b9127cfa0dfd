"""Isolation: a pod can only reach its own namespace's Secrets; bad configs write nothing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cluster.util import pod, pods, wait_until
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def test_pod_in_namespace_a_cannot_pull_a_secret_of_namespace_b(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns_a = ak_node.namespace
    ns_b = f"{ns_a}-b"
    local_cluster.kubectl("create", "namespace", ns_b)
    try:
        local_cluster.kubectl(
            "-n", ns_b, "create", "secret", "generic", "topsecret", "--from-literal=k=v"
        )
        env = [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "topsecret", "key": "k"}}}]
        local_cluster.apply(
            pod("thief", ak_node.name, containers=[{"name": "c", "image": "x", "env": env}]), ns_a
        )
        stuck = wait_until(
            "the pod refused",
            lambda: [
                p
                for p in pods(local_cluster, ns_a)
                if p["status"].get("reason") == "MandatorySecretNotFound"
            ],
        )
        assert "topsecret" in stuck[0]["status"]["message"]
        copies = remote_cluster.get_json(
            "/api/v1/secrets", {"labelSelector": f"actual.vk/node-name={ak_node.name}"}
        )["items"]
        assert not [s for s in copies if s["metadata"]["name"] == "topsecret"]
    finally:
        local_cluster.kubectl("delete", "namespace", ns_b, "--wait=false", check=False)


def test_bad_configuration_writes_nothing(
    tmp_path: Path, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    name = f"ak-bad-{uuid.uuid4().hex[:4]}"
    local_kc = local_cluster.node_kubeconfig(name)
    config = tmp_path / "ak.toml"
    config.write_text(
        '[node]\nlabels = { "kubernetes.io/role" = "master" }\n'
    )  # a forbidden node label
    for extra in ([f"--config={config}"], ["--kubelet-port=0"], ["--pod-workers=-1"]):
        out = subprocess.run(
            [
                sys.executable, "-m", "ak", "run", f"--node-name={name}",
                f"--local-kubeconfig={local_kc}",
                f"--remote-kubeconfig={remote_cluster.kubeconfig}",
                *extra,
            ],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (extra, out.stderr)
    assert local_cluster.kubectl("get", "node", name, check=False).returncode != 0
    namespaces = remote_cluster.get_json(
        "/api/v1/namespaces", {"labelSelector": f"actual.vk/node-name={name}"}
    )
    assert namespaces["items"] == []
