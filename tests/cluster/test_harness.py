"""The harness is real: workloads run on kwok nodes, logs/exec work, tokens and CSRs too."""

from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ClusterFactory
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def wait_until(what: str, probe: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/app:1"}]},
            },
        },
    }


def running_pods(cluster: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    pods = cluster.get_json(f"/api/v1/namespaces/{ns}/pods", {"labelSelector": selector})["items"]
    return [p for p in pods if p.get("status", {}).get("phase") == "Running"]


def test_deployment_runs_on_kwok_nodes(remote_cluster: Cluster) -> None:
    remote_cluster.apply(deployment("harness-web", 3), "default")
    pods = wait_until(
        "3 Running pods",
        lambda: (
            (p := running_pods(remote_cluster, "default", "app=harness-web")) and len(p) == 3 and p
        ),
    )
    assert {p["spec"]["nodeName"] for p in pods} <= {f"kwok-node-{i}" for i in range(3)}
    assert all(p["status"]["podIP"].startswith("10.16.") for p in pods)


def test_logs_and_exec_through_the_apiserver(remote_cluster: Cluster) -> None:
    remote_cluster.apply(deployment("harness-logs", 1), "default")
    pod = wait_until(
        "a Running pod", lambda: running_pods(remote_cluster, "default", "app=harness-logs")
    )[0]
    name = pod["metadata"]["name"]
    logs = remote_cluster.kubectl("logs", "--tail=2", name).stdout
    assert logs.splitlines() == ["kwok log line 9", "kwok log line 10"]
    out = remote_cluster.kubectl("exec", name, "--", "echo", "hi").stdout
    assert out == "hi\n"
    failed = remote_cluster.kubectl("exec", name, "--", "sh", "-c", "exit 3", check=False)
    # kwok reports a failed command as an internal error naming its exit status.
    assert failed.returncode != 0
    assert "exit status 3" in failed.stderr


def test_token_request_is_accepted(local_cluster: Cluster) -> None:
    with local_cluster.http() as c:
        r = c.post(
            "/api/v1/namespaces/default/serviceaccounts/default/token",
            json={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 600},
            },
        )
    assert r.status_code == 201, r.text
    token = r.json()["status"]["token"]
    who = local_cluster.kubectl(
        "auth",
        "whoami",
        "-o",
        "json",
        f"--token={token}",
        kubeconfig=local_cluster.write_kubeconfig("anon", None),
    )
    assert (
        json.loads(who.stdout)["status"]["userInfo"]["username"]
        == "system:serviceaccount:default:default"
    )
    bad = local_cluster.kubectl(
        "auth",
        "whoami",
        "--token=" + token[:-4] + "AAAA",
        check=False,
        kubeconfig=local_cluster.write_kubeconfig("anon", None),
    )
    assert bad.returncode != 0


def test_kubelet_serving_csr_is_signed_when_approved(local_cluster: Cluster) -> None:
    node = "csr-test-node"
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                ]
            )
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(node)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM)
    obj = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "harness-serving"},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": "kubernetes.io/kubelet-serving",
            "usages": ["digital signature", "server auth"],
        },
    }
    # Submitted with the node's own identity, as a kubelet would.
    node_kc = local_cluster.node_kubeconfig(node)
    local_cluster.kubectl("create", "-f", "-", input=json.dumps(obj), kubeconfig=node_kc)
    path = "/apis/certificates.k8s.io/v1/certificatesigningrequests/harness-serving"
    time.sleep(1)
    assert not local_cluster.get_json(path).get("status", {}).get("certificate")
    local_cluster.kubectl("certificate", "approve", "harness-serving")
    signed = wait_until(
        "signed certificate",
        lambda: local_cluster.get_json(path).get("status", {}).get("certificate"),
    )
    cert = x509.load_pem_x509_certificate(base64.b64decode(signed))
    assert (
        cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"system:node:{node}"
    )


def test_extra_clusters_share_etcd_and_leave_nothing_behind(
    cluster_factory: ClusterFactory, remote_cluster: Cluster
) -> None:
    extra = cluster_factory("extra")
    assert extra.etcd is remote_cluster.etcd and extra.prefix != remote_cluster.prefix
    extra.kubectl("create", "namespace", "only-in-extra")
    assert remote_cluster.kubectl("get", "namespace", "only-in-extra", check=False).returncode != 0
    pids = [p.pid for p in extra.procs]
    port = extra.port
    extra.stop()
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z"
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
