"""The kubelet port's serving certificate for any node name, and the node telling
when the port cannot serve: its KubeletAPIUnavailable condition, Warning Events
on the Node, and ``ak doctor``."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from ak.core import kubelet_status
from tests.cluster.test_doctor import doctor, fix_after, line
from tests.cluster.util import events_for, run_pod, wait_until
from tests.conftest import AKNode, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def condition(ak: AKProcess, type_: str) -> dict[str, Any]:
    conditions = ak.node().get("status", {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def kubelet_api_reason(ak: AKProcess, reason: str) -> dict[str, Any] | None:
    found = condition(ak, kubelet_status.CONDITION)
    return found if found.get("reason") == reason else None


def node_warnings(cluster: Cluster, node: str, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events_for(cluster, "default", node)
        if e["involvedObject"]["kind"] == "Node"
        and e["reason"] == reason
        and e["type"] == "Warning"
    ]


def serving_csr(cluster: Cluster, node: str) -> str | None:
    for csr in cluster.get_json("/apis/certificates.k8s.io/v1/certificatesigningrequests")["items"]:
        if csr["spec"]["username"] == f"system:node:{node}":
            return str(csr["metadata"]["name"])
    return None


def test_a_63_character_node_name_serves_logs_once_its_csr_is_approved(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    # CN system:node:<name> is 75 characters: over the 64 that cryptography allows
    # by default, which made the kubelet API crash-loop without a word on the node.
    suffix = uuid.uuid4().hex[:5]
    name = f"ak-long-{suffix}-".ljust(63, "x")
    assert len(f"system:node:{name}") == 75
    node = AKNode(
        AKProcess(local_cluster, remote_cluster, name, serving_cert=False), f"long-{suffix}"
    )
    local_cluster.kubectl("create", "namespace", node.namespace)
    node.ak.start()
    try:
        wait_for_node_ready(node.ak)
        csr = wait_until("a serving CSR", lambda: serving_csr(local_cluster, name))

        # Until someone approves it, the node says why logs and exec fail...
        pending = wait_until(
            "the node to say its CSR is pending",
            lambda: kubelet_api_reason(node.ak, kubelet_status.CERTIFICATE_PENDING),
        )
        assert pending["status"] == "True"
        assert f"kubectl certificate approve {csr}" in pending["message"]
        assert condition(node.ak, "Ready")["status"] == "True"  # its pods run all the same
        wait_until(
            "a Warning Event on the node",
            lambda: node_warnings(local_cluster, name, kubelet_status.CERTIFICATE_PENDING),
        )
        rc, lines = doctor(local_cluster.node_kubeconfig(name), remote_cluster.kubeconfig, name)
        assert rc == 1, "\n".join(lines)
        assert line(lines, "kubelet API").startswith("✗ ")
        assert csr in line(lines, "kubelet API")
        assert "approve the CSR" in fix_after(lines, "kubelet API")

        # ...and once approved, kubectl logs goes through the 75-character identity.
        local_cluster.kubectl("certificate", "approve", csr)
        run_pod(local_cluster, node.namespace, name, "app")
        wait_until(
            "kubectl logs through the node",
            lambda: (
                local_cluster.kubectl("-n", node.namespace, "logs", "app", check=False).returncode
                == 0
            ),
        )
        serving = wait_until(
            "the node to say it serves",
            lambda: kubelet_api_reason(node.ak, kubelet_status.SERVING),
        )
        assert serving["status"] == "False"
        rc, lines = doctor(local_cluster.node_kubeconfig(name), remote_cluster.kubeconfig, name)
        assert rc == 0, "\n".join(lines)
        assert f"port {node.ak.kubelet_port}" in line(lines, "kubelet API")
    finally:
        node.ak.stop()
        local_cluster.kubectl("delete", "namespace", node.namespace, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", name, "--wait=false", check=False)


def test_a_port_that_cannot_be_listened_on_is_on_the_node(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ak = AKProcess(local_cluster, remote_cluster, f"ak-busy-{uuid.uuid4().hex[:5]}")
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("0.0.0.0", ak.kubelet_port))
        taken.listen()
        ak.start()
        try:
            wait_for_node_ready(ak)
            failed = wait_until(
                "the node to say its kubelet API failed",
                lambda: kubelet_api_reason(ak, kubelet_status.FAILED),
            )
            assert failed["status"] == "True"
            assert f"cannot serve port {ak.kubelet_port}" in failed["message"]
            assert "Address already in use" in failed["message"]
            assert condition(ak, "Ready")["status"] == "True"
            events = wait_until(
                "a Warning Event on the node",
                lambda: node_warnings(local_cluster, ak.node_name, kubelet_status.FAILED),
            )
            assert "Address already in use" in events[0]["message"]
        finally:
            ak.stop()
            local_cluster.kubectl("delete", "node", ak.node_name, "--wait=false", check=False)
