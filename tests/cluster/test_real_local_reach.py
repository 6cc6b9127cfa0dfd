"""The local cluster reaches pods on the AK node (``--pod-address-range``).

A webhook server runs in a real container on the remote real node; the LOCAL
API server calls it through its Service, as it calls any admission or
conversion webhook, and its verdict applies. Each pod's local address is one
of AK's range, never the remote pod's IP, so every byte these tests send went
through AK (which counts them in ``ak_pod_proxy_connections_total``).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.cluster.realutil import container, exec_in, gone, kubectl
from tests.cluster.util import Obj, pods, wait_until
from tests.conftest import AKNode
from tests.testbed import images
from tests.testbed.cluster import Cluster

GROUP = "ak.test"


def _webhook_app(local: Cluster, node: AKNode, name: str) -> Obj:
    """Deployment + Service ``name`` serving HTTPS on 8443 (Service port 443),
    with a certificate for ``name.<ns>.svc`` from the local CA; its caBundle."""
    ns = node.namespace
    pair = local.ca.issue(f"hook-{ns}-{name}", name, server=True, dns=(f"{name}.{ns}.svc",))
    local.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-tls"},
                "type": "kubernetes.io/tls",
                "data": {
                    "tls.crt": base64.b64encode(pair.cert.read_bytes()).decode(),
                    "tls.key": base64.b64encode(pair.key.read_bytes()).decode(),
                },
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {
                            "nodeSelector": {"kubernetes.io/hostname": node.name},
                            "terminationGracePeriodSeconds": 1,
                            "volumes": [{"name": "tls", "secret": {"secretName": f"{name}-tls"}}],
                            "containers": [
                                container(
                                    "hook",
                                    "/bin/webhook",
                                    image=images.WEBHOOK,
                                    volumeMounts=[{"name": "tls", "mountPath": "/tls"}],
                                    readinessProbe={
                                        "httpGet": {
                                            "path": "/healthz",
                                            "port": 8443,
                                            "scheme": "HTTPS",
                                        },
                                        "periodSeconds": 1,
                                        "failureThreshold": 1,
                                    },
                                )
                            ],
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name},
                "spec": {
                    "selector": {"app": name},
                    "ports": [{"name": "https", "port": 443, "targetPort": 8443}],
                },
            },
        ],
        ns,
    )
    return {"caBundle": base64.b64encode(local.ca.pem).decode()}


def _ready_pod(local: Cluster, node: AKNode, app: str) -> Obj:
    def ready() -> Obj | None:
        for p in pods(local, node.namespace, f"app={app}"):
            conditions = p.get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return p
        return None

    return wait_until(f"a Ready {app} pod", ready, 120)


def _endpoints(cluster: Cluster, namespace: str, service: str) -> list[Obj]:
    slices = cluster.get_json(
        f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
        {"labelSelector": f"kubernetes.io/service-name={service}"},
    )["items"]
    return [e for s in slices for e in s.get("endpoints") or []]


def _ready_addresses(cluster: Cluster, namespace: str, service: str) -> set[str]:
    return {
        a
        for e in _endpoints(cluster, namespace, service)
        if (e.get("conditions") or {}).get("ready")
        for a in e["addresses"]
    }


def _proxied(node: AKNode, result: str = "forwarded") -> float:
    text = httpx.get(f"http://127.0.0.1:{node.ak.metrics_port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(f'ak_pod_proxy_connections_total{{result="{result}"}}'):
            total += float(line.split()[-1])
    return total


def _create_configmap(
    local: Cluster, ns: str, name: str, deny: bool
) -> subprocess.CompletedProcess[str]:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"deny": "true" if deny else "false"}},
        "data": {"k": "v"},
    }
    return kubectl(local, "-n", ns, "create", "-f", "-", input=json.dumps(body))


@pytest.fixture
def validating_webhook(local_cluster: Cluster, ak_real_addressed: AKNode) -> Iterator[str]:
    node = ak_real_addressed
    ns = node.namespace
    bundle = _webhook_app(local_cluster, node, "hook")
    name = f"ak-test-{ns}"
    local_cluster.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": f"configmaps.{ns}.ak.test",
                    "clientConfig": {
                        "service": {"namespace": ns, "name": "hook", "path": "/validate"},
                        **bundle,
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                    "objectSelector": {"matchExpressions": [{"key": "deny", "operator": "Exists"}]},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 10,
                }
            ],
        }
    )
    try:
        yield name
    finally:
        kubectl(local_cluster, "delete", "validatingwebhookconfiguration", name, "--wait=false")


def test_local_api_server_calls_a_webhook_on_the_ak_node(
    local_cluster: Cluster,
    remote_cluster: Cluster,
    ak_real_addressed: AKNode,
    validating_webhook: str,
) -> None:
    node = ak_real_addressed
    ns = node.namespace
    pod = _ready_pod(local_cluster, node, "hook")
    address = pod["status"]["podIP"]
    rp = remote_cluster.get_json(
        f"/api/v1/namespaces/{node.remote_namespace}/pods/{pod['metadata']['name']}"
    )
    # The local address is AK's, never the remote pod's.
    assert ipaddress.ip_address(address) in ipaddress.ip_network("10.250.0.0/16")
    assert pod["status"]["podIPs"] == [{"ip": address}]
    assert rp["status"]["podIP"] != address
    wait_until(
        "the local Service's endpoint at the pod's local address",
        lambda: _ready_addresses(local_cluster, ns, "hook") == {address},
        60,
    )
    before = _proxied(node)

    allowed = _create_configmap(local_cluster, ns, "fine", deny=False)
    assert allowed.returncode == 0, allowed.stderr
    refused = _create_configmap(local_cluster, ns, "evil", deny=True)
    assert refused.returncode != 0
    assert f"denied by {pod['metadata']['name']}" in refused.stderr, refused.stderr
    assert gone(local_cluster, f"/api/v1/namespaces/{ns}/configmaps/evil")
    assert _proxied(node) > before

    # A plain client in the local cluster's network reaches it too.
    hello = httpx.get(f"https://{address}:8443/", verify=False, timeout=30)
    assert hello.text.strip() == f"hello from {pod['metadata']['name']}"


def test_endpoints_follow_remote_readiness_on_both_sides(
    local_cluster: Cluster,
    remote_cluster: Cluster,
    ak_real_addressed: AKNode,
    validating_webhook: str,
) -> None:
    node = ak_real_addressed
    ns = node.namespace
    pod = _ready_pod(local_cluster, node, "hook")
    name, address = pod["metadata"]["name"], pod["status"]["podIP"]
    remote_ip = remote_cluster.get_json(f"/api/v1/namespaces/{node.remote_namespace}/pods/{name}")[
        "status"
    ]["podIP"]
    wait_until(
        "the remote copy's endpoint",
        lambda: _ready_addresses(remote_cluster, node.remote_namespace, "hook") == {remote_ip},
        60,
    )
    wait_until(
        "the local endpoint", lambda: _ready_addresses(local_cluster, ns, "hook") == {address}, 60
    )

    exec_in(local_cluster, node, name, "touch", "/tmp/unready")
    wait_until(
        "the remote endpoint not ready",
        lambda: not _ready_addresses(remote_cluster, node.remote_namespace, "hook"),
        60,
    )
    wait_until(
        "the local endpoint not ready", lambda: not _ready_addresses(local_cluster, ns, "hook"), 60
    )
    # No ready endpoint: the webhook cannot be called, and failurePolicy Fail refuses.
    refused = _create_configmap(local_cluster, ns, "while-unready", deny=False)
    assert refused.returncode != 0
    assert "failed calling webhook" in refused.stderr, refused.stderr

    exec_in(local_cluster, node, name, "rm", "/tmp/unready")
    wait_until(
        "the local endpoint ready again",
        lambda: _ready_addresses(local_cluster, ns, "hook") == {address},
        60,
    )
    allowed = _create_configmap(local_cluster, ns, "after", deny=False)
    assert allowed.returncode == 0, allowed.stderr


def test_crd_conversion_webhook_on_the_ak_node(
    local_cluster: Cluster, ak_real_addressed: AKNode
) -> None:
    node = ak_real_addressed
    ns = node.namespace
    bundle = _webhook_app(local_cluster, node, "convert")
    plural = f"widgets{node.name.replace('-', '')}"
    crd = f"{plural}.{GROUP}"
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    local_cluster.apply(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": crd},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {"plural": plural, "singular": plural[:-1], "kind": f"W{plural}"},
                "versions": [
                    {"name": "v1", "served": True, "storage": True, "schema": schema},
                    {"name": "v2", "served": True, "storage": False, "schema": schema},
                ],
                "conversion": {
                    "strategy": "Webhook",
                    "webhook": {
                        "conversionReviewVersions": ["v1"],
                        "clientConfig": {
                            "service": {"namespace": ns, "name": "convert", "path": "/convert"},
                            **bundle,
                        },
                    },
                },
            },
        }
    )
    try:
        pod = _ready_pod(local_cluster, node, "convert")

        def established() -> bool:
            got = local_cluster.get_json(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}"
            )
            return any(
                c["type"] == "Established" and c["status"] == "True"
                for c in got.get("status", {}).get("conditions", [])
            )

        wait_until("the CRD established", established, 60)
        wait_until(
            "the convert endpoint", lambda: bool(_ready_addresses(local_cluster, ns, "convert")), 60
        )
        local_cluster.apply(
            {
                "apiVersion": f"{GROUP}/v1",
                "kind": f"W{plural}",
                "metadata": {"name": "w"},
                "spec": {"size": 3},
            },
            ns,
        )
        as_v2 = local_cluster.get_json(f"/apis/{GROUP}/v2/namespaces/{ns}/{plural}/w")
        assert as_v2["spec"] == {"replicas": 3}
        assert as_v2["metadata"]["annotations"]["converted-by"] == pod["metadata"]["name"]
    finally:
        kubectl(local_cluster, "delete", "crd", crd, "--wait=false")


def _answers(address: str) -> str | None:
    try:
        return httpx.get(f"https://{address}:8443/", verify=False, timeout=10).text.strip()
    except httpx.TransportError:
        return None


def test_the_address_outlives_an_ak_restart_and_goes_with_the_pod(
    local_cluster: Cluster, remote_cluster: Cluster, ak_real_addressed: AKNode
) -> None:
    node = ak_real_addressed
    _webhook_app(local_cluster, node, "hook")
    pod = _ready_pod(local_cluster, node, "hook")
    name, address = pod["metadata"]["name"], pod["status"]["podIP"]
    assert _answers(address) == f"hello from {name}"

    node.ak.kill()
    assert _answers(address) is None  # nothing listens while AK is down
    node.ak.start()
    wait_until("the pod served again after the restart", lambda: _answers(address), 60)
    again = local_cluster.get_json(f"/api/v1/namespaces/{node.namespace}/pods/{name}")
    assert again["status"]["podIP"] == address
    assert again["metadata"]["uid"] == pod["metadata"]["uid"]

    kubectl(local_cluster, "-n", node.namespace, "scale", "deployment/hook", "--replicas=0")
    wait_until("the pod gone", lambda: not pods(local_cluster, node.namespace, "app=hook"), 60)
    wait_until("nothing listening on its address", lambda: _answers(address) is None, 30)


def test_a_port_the_pod_does_not_serve_closes_at_once(
    local_cluster: Cluster, ak_real_addressed: AKNode
) -> None:
    """A Service targeting a port nothing listens on in the pod: AK listens (it
    cannot know), the remote kubelet cannot connect, and the client sees the
    connection closed at once, not hanging; AK counts it as failed."""
    node = ak_real_addressed
    _webhook_app(local_cluster, node, "hook")
    address = _ready_pod(local_cluster, node, "hook")["status"]["podIP"]
    local_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "nothing"},
            "spec": {"selector": {"app": "hook"}, "ports": [{"port": 80, "targetPort": 9999}]},
        },
        node.namespace,
    )

    def closed_at_once() -> bool:
        try:
            with socket.create_connection((address, 9999), timeout=5) as s:
                s.settimeout(10)
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return s.recv(100) == b""
        except (ConnectionRefusedError, ConnectionResetError):
            return False  # AK not listening yet, or reset: both not what we want

    before = _proxied(node, "failed")
    wait_until("a connection to 9999 closed by AK", closed_at_once, 60)
    wait_until("counted as failed", lambda: _proxied(node, "failed") > before, 10)
