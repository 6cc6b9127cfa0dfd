"""NetworkPolicies: the default isolation, the translation of a tenant's policy,
and AK's own check at the pod addresses (ak/core/netpol.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ak.core import netpol
from ak.core.labels import (
    ANNOTATION_SOURCE_UID,
    LABEL_INGRESS_COVERED,
    LABEL_NAMESPACE,
    LABEL_NODE,
    LABEL_REPLICA,
)
from ak.core.local_apiserver import Endpoint
from ak.core.pods import to_remote_pod

Obj = dict[str, Any]
NODE = "vk-a"
RNS = "vk-a-1234"
NAMESPACES = {
    "web": {"kubernetes.io/metadata.name": "web", "team": "a"},
    "db": {"kubernetes.io/metadata.name": "db", "team": "a", "tier": "data"},
    "ops": {"kubernetes.io/metadata.name": "ops", "team": "ops"},
    "kube-system": {"kubernetes.io/metadata.name": "kube-system"},
}
INGRESS = {"namespaceSelector": {"matchLabels": {"name": "ingress"}}}
CTX = netpol.Context(
    node_label=NODE,
    namespaces=NAMESPACES,
    any_source=(INGRESS,),
    api_addresses=frozenset({"10.0.0.1", "10.96.0.1"}),
    api_ports=frozenset({6443, 443}),
    endpoint=Endpoint("203.0.113.5", 443),
)
SAME_NODE = {"namespaceSelector": {"matchLabels": {LABEL_NODE: NODE}}}


def policy(spec: Obj, name: str = "p", namespace: str = "web") -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "uid": "u-1", "labels": {"x": "y"}},
        "spec": spec,
    }


def translate(spec: Obj, ctx: netpol.Context = CTX) -> netpol.Translation:
    return netpol.to_remote_policy(policy(spec), remote_namespace=RNS, ctx=ctx)


# -- selectors ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        (None, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
        # An operator AK does not know admits nothing rather than everything.
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            {"a": "5"},
            False,
        ),
    ],
)
def test_selector_matches(selector: Obj | None, labels: dict[str, str], matches: bool) -> None:
    assert netpol.selector_matches(selector, labels) is matches


def test_policy_types_default_as_the_api_server_does() -> None:
    assert netpol.policy_types({}) == ["Ingress"]
    assert netpol.policy_types({"egress": [{}]}) == ["Ingress", "Egress"]
    assert netpol.policy_types({"policyTypes": ["Egress"]}) == ["Egress"]


# -- isolation by default ---------------------------------------------------------------
def test_isolation_admits_the_same_node_only_and_steps_aside_for_covered_pods() -> None:
    policies = netpol.isolation_policies(RNS, NODE, "web", ())
    assert policies[netpol.PEERS_POLICY] is None
    iso = policies[netpol.ISOLATION_POLICY]
    assert iso is not None
    assert iso["metadata"]["namespace"] == RNS
    assert iso["metadata"]["labels"][LABEL_NODE] == NODE
    assert iso["metadata"]["labels"][LABEL_NAMESPACE] == "web"
    spec = iso["spec"]
    assert spec["policyTypes"] == ["Ingress"]  # egress (DNS, the local API server) untouched
    assert spec["ingress"] == [{"from": [SAME_NODE]}]
    # Covered pods are left to the tenant's translated policies.
    assert netpol.selector_matches(spec["podSelector"], {"app": "x"})
    assert not netpol.selector_matches(spec["podSelector"], {LABEL_INGRESS_COVERED: "true"})
    assert netpol.is_default_policy(iso, NODE)
    assert not netpol.is_default_policy(iso, "vk-b")


def test_operator_peers_reach_every_pod() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    policies = netpol.isolation_policies(RNS, NODE, "web", (peer,))
    iso, peers = policies[netpol.ISOLATION_POLICY], policies[netpol.PEERS_POLICY]
    assert iso is not None and peers is not None
    assert iso["spec"]["ingress"] == [{"from": [SAME_NODE, peer]}]
    assert peers["spec"]["podSelector"] == {}  # covered pods too: a tenant cannot name them
    assert peers["spec"]["ingress"] == [{"from": [peer]}]


def test_covered_follows_the_copies_with_ingress() -> None:
    deny_web = policy({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]})
    egress_only = policy({"podSelector": {}, "policyTypes": ["Egress"]})
    assert netpol.covered({"app": "web"}, [deny_web])
    assert not netpol.covered({"app": "db"}, [deny_web])
    assert not netpol.covered({"app": "web"}, [egress_only])
    assert not netpol.covered({"app": "web"}, [])
    pod = {"metadata": {"labels": {"app": "web"}}}
    assert netpol.covered_patch(pod, True) == {
        "metadata": {"labels": {LABEL_INGRESS_COVERED: "true"}}
    }
    assert netpol.covered_patch(pod, False) is None
    pod["metadata"]["labels"][LABEL_INGRESS_COVERED] = "true"
    assert netpol.covered_patch(pod, True) is None
    assert netpol.covered_patch(pod, False) == {
        "metadata": {"labels": {LABEL_INGRESS_COVERED: None}}
    }


def test_a_local_pod_cannot_set_the_covered_label_itself() -> None:
    local = {
        "metadata": {
            "name": "p",
            "namespace": "web",
            "uid": "u",
            "labels": {"app": "web", LABEL_INGRESS_COVERED: "true", LABEL_NODE: "vk-b"},
        },
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    remote = to_remote_pod(local, node_name=NODE, remote_namespace=RNS, extra_env=[])
    labels = remote["metadata"]["labels"]
    assert LABEL_INGRESS_COVERED not in labels
    assert labels[LABEL_NODE] == NODE
    assert labels["app"] == "web"


# -- translation ------------------------------------------------------------------------
def test_copy_is_labelled_as_ak_s_and_keeps_pod_selector_and_ports() -> None:
    spec = {
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                "ports": [
                    {"port": 8080},
                    {"port": "http", "protocol": "TCP"},
                    {"port": 9000, "endPort": 9010},
                ],
            }
        ],
    }
    t = translate(spec)
    meta = t.policy["metadata"]
    assert meta["namespace"] == RNS and meta["name"] == "p"
    assert meta["labels"][LABEL_NODE] == NODE
    assert meta["labels"][LABEL_NAMESPACE] == "web"
    assert meta["labels"][LABEL_REPLICA] == "true"
    assert meta["labels"]["x"] == "y"
    assert meta["annotations"][ANNOTATION_SOURCE_UID] == "u-1"
    assert netpol.is_own_policy(t.policy, NODE, "web")
    assert not netpol.is_own_policy(t.policy, "vk-b", "web")
    out = t.policy["spec"]
    assert out["podSelector"] == {"matchLabels": {"app": "web"}}
    assert out["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
            "ports": [
                {"protocol": "TCP", "port": 8080},
                {"protocol": "TCP", "port": "http"},
                {"protocol": "TCP", "port": 9000, "endPort": 9010},
            ],
        }
    ]
    assert "egress" not in out
    assert t.problems == []


def test_deny_all_stays_deny_all() -> None:
    t = translate({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert t.policy["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [],
    }


def test_namespace_selector_is_resolved_locally_and_confined_to_the_node() -> None:
    spec = {
        "podSelector": {},
        "ingress": [
            {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]},
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [{"key": "tier", "operator": "Exists"}]
                        },
                        "podSelector": {"matchLabels": {"role": "backup"}},
                    }
                ]
            },
        ],
    }
    rules = translate(spec).policy["spec"]["ingress"]
    assert rules[0]["from"] == [
        {
            "namespaceSelector": {
                "matchLabels": {LABEL_NODE: NODE},
                "matchExpressions": [
                    {"key": LABEL_NAMESPACE, "operator": "In", "values": ["db", "web"]}
                ],
            }
        }
    ]
    assert rules[1]["from"] == [
        {
            "namespaceSelector": {
                "matchLabels": {LABEL_NODE: NODE},
                "matchExpressions": [{"key": LABEL_NAMESPACE, "operator": "In", "values": ["db"]}],
            },
            "podSelector": {"matchLabels": {"role": "backup"}},
        }
    ]


def test_a_namespace_selector_can_never_select_another_node_s_namespaces() -> None:
    """Whatever the tenant writes, every namespace peer names this node."""
    specs = [
        {"namespaceSelector": {}},
        {"namespaceSelector": {"matchLabels": {LABEL_NODE: "vk-b"}}},
        {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}},
    ]
    other_tenant = {LABEL_NODE: "vk-b", LABEL_NAMESPACE: "ops", "kubernetes.io/metadata.name": "x"}
    own = {LABEL_NODE: NODE, LABEL_NAMESPACE: "ops"}
    for peer in specs:
        rules = translate({"podSelector": {}, "ingress": [{"from": [peer]}]}).policy["spec"][
            "ingress"
        ]
        for rule in rules:
            for remote_peer in rule["from"]:
                sel = remote_peer["namespaceSelector"]
                assert sel["matchLabels"][LABEL_NODE] == NODE
                assert not netpol.selector_matches(sel, other_tenant)
    # The empty selector is every namespace of this node.
    rules = translate({"podSelector": {}, "ingress": [{"from": [specs[0]]}]}).policy["spec"]
    assert rules["ingress"] == [{"from": [SAME_NODE]}]
    assert netpol.selector_matches(SAME_NODE["namespaceSelector"], own)


def test_a_rule_whose_peers_select_nothing_admits_nothing() -> None:
    # No local namespace has team=z: the rule must vanish, not become "from anyone".
    spec = {
        "podSelector": {},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "z"}}}]}],
    }
    assert translate(spec).policy["spec"]["ingress"] == []


def test_from_anyone_means_the_tenant_s_cluster_not_the_other_tenants() -> None:
    spec = {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}
    rules = translate(spec).policy["spec"]["ingress"]
    assert rules == [{"ports": [{"protocol": "TCP", "port": 80}], "from": [SAME_NODE, INGRESS]}]
    # With isolation off the operator chose a flat network: anyone stays anyone.
    off = netpol.Context(node_label=NODE, namespaces=NAMESPACES, any_source=None)
    assert translate(spec, off).policy["spec"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": 80}]}
    ]


def test_ip_blocks_are_carried_and_said() -> None:
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
    }
    t = translate(spec)
    assert t.policy["spec"]["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}
    ]
    assert any("ipBlock 0.0.0.0/0" in p for p in t.problems)


def test_egress_to_pods_is_said_to_reach_only_the_node_s_pods() -> None:
    spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"podSelector": {}}]}]}
    t = translate(spec)
    assert t.policy["spec"]["egress"] == [{"to": [{"podSelector": {}}]}]
    assert any("other nodes" in p for p in t.problems)


def test_egress_to_the_local_api_server_reaches_its_remote_endpoint() -> None:
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}], "ports": [{"port": 6443}]},
        ],
    }
    egress = translate(spec).policy["spec"]["egress"]
    assert {
        "to": [{"ipBlock": {"cidr": "203.0.113.5/32"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    } in egress
    # Another address, or another port: not the API server, nothing added.
    for rule in (
        {"to": [{"ipBlock": {"cidr": "10.0.0.2/32"}}], "ports": [{"port": 6443}]},
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 5432}]},
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/24", "10.96.0.0/12"]}}]},
    ):
        egress = translate({**spec, "egress": [rule]}).policy["spec"]["egress"]
        assert len(egress) == 1, rule


def test_egress_anywhere_on_the_api_port_reaches_the_endpoint_s_port() -> None:
    # Locally any destination on 6443; remote pods are given 203.0.113.5:443.
    spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 6443}]}]}
    egress = translate(spec).policy["spec"]["egress"]
    assert egress == [
        {"ports": [{"protocol": "TCP", "port": 6443}]},
        {
            "to": [{"ipBlock": {"cidr": "203.0.113.5/32"}}],
            "ports": [{"protocol": "TCP", "port": 443}],
        },
    ]
    # Any destination on another port: not the API server.
    other = {**spec, "egress": [{"ports": [{"port": 5432}]}]}
    assert len(translate(other).policy["spec"]["egress"]) == 1


def test_an_api_endpoint_given_by_name_cannot_be_admitted_and_is_said() -> None:
    ctx = netpol.Context(
        node_label=NODE,
        namespaces=NAMESPACES,
        api_addresses=frozenset({"10.0.0.1"}),
        api_ports=frozenset({6443}),
        endpoint=Endpoint("api.example.com", 6443),
    )
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]}],
    }
    t = translate(spec, ctx)
    assert len(t.policy["spec"]["egress"]) == 1
    assert any("api.example.com" in p for p in t.problems)


def test_egress_admitting_dns_admits_the_remote_dns() -> None:
    kube_dns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [kube_dns], "ports": [{"port": 53, "protocol": "UDP"}]}],
    }
    egress = translate(spec).policy["spec"]["egress"]
    # The local kube-system is not where remote pods resolve: the remote DNS is added.
    assert egress[-1] == {
        "to": list(netpol.DEFAULT_DNS_PEERS),
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    no_dns = {**spec, "egress": [{"to": [kube_dns], "ports": [{"port": 443}]}]}
    assert len(translate(no_dns).policy["spec"]["egress"]) == 1
    # Every port of the local kube-system: DNS among them.
    all_ports = {**spec, "egress": [{"to": [kube_dns]}]}
    assert translate(all_ports).policy["spec"]["egress"][-1]["ports"][0]["port"] == 53
    # Every port of pods in the pod's own namespace: no DNS there, none added.
    own = {**spec, "egress": [{"to": [{"podSelector": {}}]}]}
    assert len(translate(own).policy["spec"]["egress"]) == 1


def test_needs_update_ignores_api_server_defaults() -> None:
    desired = translate({"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}).policy
    current = {
        **desired,
        "metadata": {
            **desired["metadata"],
            "annotations": {**desired["metadata"]["annotations"], "other": "x"},
        },
    }
    assert not netpol.policy_needs_update(desired, current)
    changed = translate({"podSelector": {}, "ingress": [{"ports": [{"port": 81}]}]}).policy
    assert netpol.policy_needs_update(changed, current)


# -- AK's check at the pod addresses --------------------------------------------------------
TARGET = {
    "metadata": {"name": "web-1", "namespace": "web", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
}


def peer(ns: str | None, labels: dict[str, str] | None = None, ip: str = "10.1.0.7") -> netpol.Peer:
    if ns is None:
        return netpol.Peer(ip)
    return netpol.Peer(ip, ns, labels or {}, NAMESPACES.get(ns, {}))


def test_no_policy_admits_everyone() -> None:
    assert netpol.admits([], TARGET, 8080, peer(None))
    egress_only = policy({"podSelector": {}, "policyTypes": ["Egress"]})
    assert netpol.admits([egress_only], TARGET, 8080, peer("ops"))


def test_deny_all_refuses_everyone_and_an_allow_reopens() -> None:
    deny = policy({"podSelector": {}, "policyTypes": ["Ingress"]})
    assert not netpol.admits([deny], TARGET, 8080, peer("web", {"app": "client"}))
    assert not netpol.admits([deny], TARGET, 8080, peer(None))
    allow = policy(
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                    "ports": [{"port": "http"}],
                }
            ],
        },
        name="allow",
    )
    assert netpol.admits([deny, allow], TARGET, 8080, peer("web", {"app": "client"}))
    # Not on another port, nor from another pod, nor from a pod of another namespace.
    assert not netpol.admits([deny, allow], TARGET, 9090, peer("web", {"app": "client"}))
    assert not netpol.admits([deny, allow], TARGET, 8080, peer("web", {"app": "other"}))
    assert not netpol.admits([deny, allow], TARGET, 8080, peer("ops", {"app": "client"}))


def test_a_policy_selecting_other_pods_does_not_isolate_this_one() -> None:
    other = policy({"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]})
    assert netpol.admits([other], TARGET, 8080, peer("ops"))


def test_namespace_selector_and_ip_block_peers() -> None:
    by_ns = policy(
        {
            "podSelector": {},
            "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]},
                {"from": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}]},
            ],
        }
    )
    assert netpol.admits([by_ns], TARGET, 8080, peer("ops"))
    assert not netpol.admits([by_ns], TARGET, 8080, peer("db"))
    assert netpol.admits([by_ns], TARGET, 8080, peer(None, ip="192.0.2.7"))
    assert not netpol.admits([by_ns], TARGET, 8080, peer(None, ip="192.0.2.200"))
    # Not a pod: namespace and pod selectors do not select it.
    assert not netpol.admits([by_ns], TARGET, 8080, peer(None, ip="10.9.9.9"))
    # namespaceSelector with a podSelector: both must match.
    both = policy(
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": "ops"}},
                            "podSelector": {"matchLabels": {"role": "scraper"}},
                        }
                    ]
                }
            ],
        }
    )
    assert netpol.admits([both], TARGET, 8080, peer("ops", {"role": "scraper"}))
    assert not netpol.admits([both], TARGET, 8080, peer("ops", {"role": "other"}))


def test_port_ranges_and_protocols() -> None:
    ranged = policy({"podSelector": {}, "ingress": [{"ports": [{"port": 8000, "endPort": 8100}]}]})
    assert netpol.admits([ranged], TARGET, 8080, peer(None))
    assert not netpol.admits([ranged], TARGET, 8101, peer(None))
    udp = policy({"podSelector": {}, "ingress": [{"ports": [{"port": 8080, "protocol": "UDP"}]}]})
    assert not netpol.admits([udp], TARGET, 8080, peer(None))  # AK carries TCP
