"""Network isolation against real API servers (kwok remote): the default policy of
every remote namespace, the tenant's policies copied and kept in step, namespace
selectors that can only name the node's own namespaces, and AK's own check at
the pod addresses.

Whether the remote network plugin enforces what these objects say is
``test_real_network_policies.py``'s business, on a remote real node with an
enforcing plugin.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from ak.core import netpol
from ak.core.labels import (
    ANNOTATION_SOURCE_UID,
    LABEL_INGRESS_COVERED,
    LABEL_NAMESPACE,
    LABEL_NODE,
    LABEL_REPLICA,
)
from ak.core.names import remote_namespace
from tests.cluster.util import events_for, pod, pods, running, wait_until
from tests.conftest import NODE_IP, AKNode, ClusterFactory, node_running, wait_for_node_ready
from tests.testbed import sandbox
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]
NP = "/apis/networking.k8s.io/v1"


def remote_policy(remote: Cluster, rns: str, name: str) -> Obj | None:
    with remote.http() as c:
        r = c.get(f"{NP}/namespaces/{rns}/networkpolicies/{name}")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    out: Obj = r.json()
    return out


def network_policy(name: str, spec: Obj) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def remote_labels(remote: Cluster, rns: str, name: str) -> dict[str, str]:
    labels: dict[str, str] = remote.get_json(f"/api/v1/namespaces/{rns}/pods/{name}")[
        "metadata"
    ].get("labels", {})
    return labels


def covered(remote: Cluster, rns: str, name: str) -> bool:
    return LABEL_INGRESS_COVERED in remote_labels(remote, rns, name)


def label_selector(selector: Obj) -> str:
    """A metav1.LabelSelector as the API's labelSelector parameter."""
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for e in selector.get("matchExpressions") or []:
        if e["operator"] == "In":
            parts.append(f"{e['key']} in ({','.join(e['values'])})")
        elif e["operator"] == "Exists":
            parts.append(e["key"])
        else:
            raise AssertionError(f"unexpected {e}")
    return ",".join(parts)


def test_every_remote_namespace_is_isolated_by_default(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    local_cluster.apply(pod("web", ak_node.name), ns)
    iso = wait_until(
        "the isolation policy",
        lambda: remote_policy(remote_cluster, rns, netpol.ISOLATION_POLICY),
    )
    labels = iso["metadata"]["labels"]
    assert labels[LABEL_NODE] == ak_node.name and labels[LABEL_NAMESPACE] == ns
    assert iso["spec"]["policyTypes"] == ["Ingress"]
    assert iso["spec"]["ingress"] == [
        {"from": [{"namespaceSelector": {"matchLabels": {LABEL_NODE: ak_node.name}}}]}
    ]
    assert iso["spec"]["podSelector"] == {
        "matchExpressions": [{"key": LABEL_INGRESS_COVERED, "operator": "DoesNotExist"}]
    }
    # No operator peers configured: no policy for them.
    assert remote_policy(remote_cluster, rns, netpol.PEERS_POLICY) is None
    # The remote API server, evaluating the policy's own selector, picks exactly
    # this node's namespaces.
    selected = remote_cluster.get_json(
        "/api/v1/namespaces",
        {
            "labelSelector": label_selector(
                iso["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
            )
        },
    )["items"]
    assert {n["metadata"]["labels"][LABEL_NODE] for n in selected} == {ak_node.name}
    wait_until("web Running", lambda: running(pods(local_cluster, ns, "app=web")))
    assert not covered(remote_cluster, rns, "web")


ISOLATION = """
[namespaces.isolation]
enabled = {enabled}
ingressFrom = [{{ namespaceSelector = {{ matchLabels = {{ team = "ingress" }} }} }}]
"""


def test_operator_peers_and_switching_isolation_off(
    tmp_path: Path, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    config = tmp_path / "ak.toml"
    config.write_text(ISOLATION.format(enabled="true"))
    suffix = uuid.uuid4().hex[:5]
    ak = AKProcess(local_cluster, remote_cluster, f"ak-{suffix}", extra_args=[f"--config={config}"])
    with node_running(AKNode(ak, f"iso-{suffix}")) as node:
        rns = node.remote_namespace
        local_cluster.apply(pod("web", node.name), node.namespace)
        peer = {"namespaceSelector": {"matchLabels": {"team": "ingress"}}}
        peers = wait_until(
            "the peers' policy", lambda: remote_policy(remote_cluster, rns, netpol.PEERS_POLICY)
        )
        assert peers["spec"]["podSelector"] == {}
        assert peers["spec"]["ingress"] == [{"from": [peer]}]
        iso = remote_policy(remote_cluster, rns, netpol.ISOLATION_POLICY)
        assert iso is not None
        assert iso["spec"]["ingress"][0]["from"][1] == peer

        # Off: what AK made goes, after a restart (the template is read at start).
        ak.stop()
        config.write_text(ISOLATION.format(enabled="false"))
        ak.start()
        for name in netpol.DEFAULT_POLICIES:
            wait_until(
                f"{name} removed",
                lambda name=name: remote_policy(remote_cluster, rns, name) is None,  # type: ignore[misc]
            )


def test_tenant_policy_is_copied_kept_in_step_and_removed(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    local_cluster.apply([pod("web", ak_node.name), pod("client", ak_node.name)], ns)
    wait_until("both pods Running", lambda: len(running(pods(local_cluster, ns))) == 2)
    # Deny all ingress to every pod of the namespace.
    local_cluster.apply(network_policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]}), ns)
    copy = wait_until("the copy", lambda: remote_policy(remote_cluster, rns, "deny"))
    local = local_cluster.get_json(f"{NP}/namespaces/{ns}/networkpolicies/deny")
    labels = copy["metadata"]["labels"]
    assert labels[LABEL_NODE] == ak_node.name
    assert labels[LABEL_NAMESPACE] == ns
    assert labels[LABEL_REPLICA] == "true"
    assert copy["metadata"]["annotations"][ANNOTATION_SOURCE_UID] == local["metadata"]["uid"]
    assert copy["spec"]["podSelector"] == {}
    assert copy["spec"]["policyTypes"] == ["Ingress"]
    assert not copy["spec"].get("ingress")
    # The default steps aside for both pods: only the tenant's deny-all holds.
    for name in ("web", "client"):
        wait_until(f"{name} covered", lambda name=name: covered(remote_cluster, rns, name))  # type: ignore[misc]

    # A change: only web selected; client is no longer covered, web still is.
    local_cluster.apply(
        network_policy(
            "deny",
            {
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}],
                        "ports": [{"port": 8080}],
                    }
                ],
            },
        ),
        ns,
    )
    wait_until("client uncovered", lambda: not covered(remote_cluster, rns, "client"))
    assert covered(remote_cluster, rns, "web")
    # No local namespace has team=blue yet: the rule admits nothing.
    copy = wait_until(
        "the changed copy",
        lambda: (
            (c := remote_policy(remote_cluster, rns, "deny"))
            and c["spec"]["podSelector"] == {"matchLabels": {"app": "web"}}
            and c
        ),
    )
    assert copy["spec"].get("ingress") in (None, [])
    # A local namespace labelled team=blue: the copy follows, naming it by AK's labels.
    local_cluster.kubectl("label", "namespace", ns, "team=blue")

    def resolved() -> Obj | None:
        c = remote_policy(remote_cluster, rns, "deny")
        return c if c and c["spec"].get("ingress") else None

    rule = wait_until("the namespaceSelector resolved", resolved)["spec"]["ingress"][0]
    assert rule["from"] == [
        {
            "namespaceSelector": {
                "matchLabels": {LABEL_NODE: ak_node.name},
                "matchExpressions": [{"key": LABEL_NAMESPACE, "operator": "In", "values": [ns]}],
            }
        }
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]

    # AK restart: a change made while it is down is found.
    ak_node.ak.stop()
    local_cluster.kubectl(
        "patch", "networkpolicy", "deny", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"podSelector": {"matchLabels": {"app": "client"}}}}),
    )  # fmt: skip
    ak_node.ak.start()
    wait_for_node_ready(ak_node.ak)
    wait_until(
        "the copy after the restart",
        lambda: (
            (remote_policy(remote_cluster, rns, "deny") or {"spec": {}})["spec"].get("podSelector")
            == {"matchLabels": {"app": "client"}}
        ),
    )
    wait_until("web uncovered", lambda: not covered(remote_cluster, rns, "web"))
    wait_until("client covered", lambda: covered(remote_cluster, rns, "client"))

    # A policy selecting no pod of the node is not copied; the last selected pod
    # gone, the copy goes.
    local_cluster.apply(
        network_policy("nobody", {"podSelector": {"matchLabels": {"app": "none"}}}), ns
    )
    local_cluster.kubectl("delete", "pod", "client", "-n", ns, "--wait=false")
    wait_until("copy gone with its pod", lambda: remote_policy(remote_cluster, rns, "deny") is None)
    assert remote_policy(remote_cluster, rns, "nobody") is None

    # Deleted: the copy goes, and web is left to the default again.
    local_cluster.apply(network_policy("all", {"podSelector": {}}), ns)
    wait_until("all copied", lambda: remote_policy(remote_cluster, rns, "all"))
    wait_until("web covered", lambda: covered(remote_cluster, rns, "web"))
    local_cluster.kubectl("delete", "networkpolicy", "all", "-n", ns)
    wait_until("all's copy gone", lambda: remote_policy(remote_cluster, rns, "all") is None)
    wait_until("web uncovered again", lambda: not covered(remote_cluster, rns, "web"))


def test_what_cannot_be_carried_is_a_warning_and_a_foreign_policy_is_left_alone(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    local_cluster.apply(pod("web", ak_node.name), ns)
    local_cluster.apply(
        network_policy(
            "out",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}],
            },
        ),
        ns,
    )
    event = wait_until(
        "a Warning on the policy",
        lambda: [e for e in events_for(local_cluster, ns, "out") if e["type"] == "Warning"],
    )[0]
    assert event["reason"] == netpol.REASON_UNSUPPORTED
    assert "ipBlock 192.0.2.0/24" in event["message"]
    assert event["involvedObject"]["kind"] == "NetworkPolicy"
    copy = wait_until("the egress copy", lambda: remote_policy(remote_cluster, rns, "out"))
    assert copy["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}]

    # A remote policy AK did not make keeps its name: left alone, and the user told.
    remote_cluster.apply(network_policy("taken", {"podSelector": {"matchLabels": {"x": "y"}}}), rns)
    local_cluster.apply(network_policy("taken", {"podSelector": {}}), ns)
    conflict = wait_until(
        "a conflict Warning",
        lambda: [
            e
            for e in events_for(local_cluster, ns, "taken")
            if e["reason"] == netpol.REASON_CONFLICT
        ],
    )[0]
    assert "not made by AK" in conflict["message"]
    theirs = remote_policy(remote_cluster, rns, "taken")
    assert theirs is not None and theirs["spec"]["podSelector"] == {"matchLabels": {"x": "y"}}
    # Not AK's copy: it does not make the default step aside.
    assert not covered(remote_cluster, rns, "web")


def test_namespace_selectors_never_select_another_node_s_namespaces(
    ak_node: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    cluster_factory: ClusterFactory,
) -> None:
    """Two local clusters, the same namespace names and labels, one remote: each
    node's copies select its own remote namespaces only, as the remote API
    server evaluates their selectors."""
    ns = ak_node.namespace
    second = cluster_factory("local-2")
    other = AKProcess(second, remote_cluster, f"ak-{uuid.uuid4().hex[:5]}", node_ip=NODE_IP)
    with node_running(AKNode(other, ns)):
        every_namespace: Obj = {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {}}]}],
        }
        by_name: Obj = {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                    ]
                }
            ],
        }
        for cluster, node in ((local_cluster, ak_node.name), (second, other.node_name)):
            cluster.apply(
                [
                    pod("web", node),
                    network_policy("every", every_namespace),
                    network_policy("by-name", by_name),
                ],
                ns,
            )
        for node in (ak_node.name, other.node_name):
            rns = remote_namespace(node, ns)
            for name in ("every", "by-name"):
                copy = wait_until(
                    f"{name} in {rns}",
                    lambda rns=rns, name=name: remote_policy(remote_cluster, rns, name),  # type: ignore[misc]
                )
                sel = copy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
                selected = remote_cluster.get_json(
                    "/api/v1/namespaces", {"labelSelector": label_selector(sel)}
                )["items"]
                assert selected, (node, name)
                assert {n["metadata"]["labels"][LABEL_NODE] for n in selected} == {node}
                if name == "by-name":
                    assert {n["metadata"]["name"] for n in selected} == {rns}


def _metric(ak: AKProcess, result: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{ak.metrics_port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f'ak_pod_proxy_connections_total{{result="{result}"}}'):
            return float(line.split()[-1])
    return 0.0


def _decided(ak: AKProcess) -> float:
    return sum(_metric(ak, r) for r in ("denied", "forwarded", "refused"))


def _connect(source: str, address: str, port: int) -> None:
    with socket.socket() as s:
        s.settimeout(5)
        s.bind((source, 0))
        s.connect((address, port))


def _local_address(cluster: Cluster, ns: str, name: str) -> str:
    def address() -> str | None:
        ip = cluster.get_json(f"/api/v1/namespaces/{ns}/pods/{name}").get("status", {}).get("podIP")
        return ip if ip and ip.startswith("10.250.") else None

    return wait_until(f"{name}'s local address", address)


def _outcome(ak: AKProcess, source: str, address: str, port: int) -> str:
    """Connect from ``source``; "denied" if AK refused it by policy, else "passed"."""
    denied, decided = _metric(ak, "denied"), _decided(ak)
    _connect(source, address, port)
    wait_until("AK's decision", lambda: _decided(ak) > decided, timeout=30)
    return "denied" if _metric(ak, "denied") > denied else "passed"


def test_pod_addresses_enforce_the_tenant_s_ingress_policies(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    """A local peer is known by its address: the client pod's own local address
    (this sandbox owns the whole pod address range, so the test binds it), or an
    address no pod has."""
    suffix = uuid.uuid4().hex[:5]
    third = int(suffix, 16) % 250 + 1
    ak = AKProcess(
        local_cluster,
        remote_cluster,
        f"ak-{suffix}",
        extra_args=[f"--pod-address-range=10.250.{third}.0/24"],
        metrics=True,
    )
    with node_running(AKNode(ak, f"pa-{suffix}")) as node:
        ns = node.namespace
        ports = [
            {"name": "c", "image": "registry.invalid/app:1", "ports": [{"containerPort": 8080}]}
        ]
        local_cluster.apply([pod("web", node.name, containers=ports), pod("client", node.name)], ns)
        web, client = (
            _local_address(local_cluster, ns, "web"),
            _local_address(local_cluster, ns, "client"),
        )
        stranger = "10.250.252.7"  # in the sandbox's range, no pod's
        assert sandbox.POD_ADDRESSES == "10.250.0.0/16"
        wait_until("AK listening on web", lambda: _outcome(ak, client, web, 8080) == "passed")
        assert _outcome(ak, stranger, web, 8080) == "passed"  # no policy: anyone

        local_cluster.apply(
            network_policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]}), ns
        )
        wait_until("the deny-all enforced", lambda: _outcome(ak, client, web, 8080) == "denied")
        assert _outcome(ak, stranger, web, 8080) == "denied"

        allow = {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                    "ports": [{"port": 8080}],
                }
            ],
        }
        local_cluster.apply(network_policy("allow-client", allow), ns)
        wait_until("the allow enforced", lambda: _outcome(ak, client, web, 8080) == "passed")
        assert _outcome(ak, stranger, web, 8080) == "denied"  # not a pod, not admitted
        local_cluster.kubectl("delete", "networkpolicy", "deny", "allow-client", "-n", ns)
        wait_until("open again", lambda: _outcome(ak, stranger, web, 8080) == "passed")
