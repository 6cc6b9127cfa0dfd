"""NetworkPolicies on the remote side, and AK's own check at the pod addresses.

Three pure parts, for three places traffic can reach a pod on the AK node:

Isolation by default (``isolation_policies``)
    Tenants share the remote cluster's flat pod network, so every remote
    namespace AK makes gets a NetworkPolicy admitting ingress only from the
    remote namespaces of the same AK node (``actual.vk/node-name``, a label
    only AK writes on namespaces, and the confinement policy keeps AK nodes
    from writing each other's) plus the peers the operator names
    (``[namespaces.isolation] ingressFrom``: the remote ingress controller's
    or monitoring's namespace). Ingress only: egress (DNS, the local API
    server, anything outside) stays as the tenant's own policies leave it,
    and another tenant's pods are kept out by THEIR namespaces' defaults.

    NetworkPolicies add up: a pod is admitted what ANY policy selecting it
    admits. A default admitting every namespace of the node, left selecting a
    pod the tenant isolates with a deny-all of its own, would keep admitting
    those namespaces beside it, so the default steps aside for such pods.
    Its podSelector excludes pods labelled ``LABEL_INGRESS_COVERED``, which
    AK sets on a remote pod exactly while one of the tenant's translated
    policies with Ingress selects it (``covered``: judged on the REMOTE
    objects, so the label is set only after such a policy exists and removed
    before it goes; the pod is never left selected by no policy at all). The
    complement of the union of the tenant's selectors could not be written
    as one label selector; a label can. The operator's peers must reach such
    pods too (a tenant cannot name a remote namespace in its own policies),
    so they have a policy of their own selecting every pod.

The tenant's own policies (``to_remote_policy``)
    A local NetworkPolicy selecting pods on the AK node is copied into their
    remote namespace. ``podSelector`` as is (remote pods carry their local
    labels). ``namespaceSelector`` is resolved against the LOCAL namespaces'
    labels and written as the remote namespaces' ``actual.vk/node-name`` and
    ``actual.vk/namespace`` labels, so it can only ever select namespaces of
    the same AK node. ``ipBlock`` and ports as they are. An ingress rule
    admitting every source admits every namespace of the node plus the
    operator's peers (the tenant's "everyone" is its own cluster, not the
    other tenants). An egress rule that lets the pod reach its local API
    server (an ipBlock holding its address, on its port) also admits the
    endpoint remote pods are given; one that admits DNS (port 53) also admits
    the remote cluster's DNS (``[namespaces.isolation] dns``), since the
    tenant's kube-system is not where the remote pod resolves names. What
    cannot be carried is said in ``Translation.problems``, for a Warning
    Event on the local policy.

AK's check at the pod addresses (``admits``)
    Local pods reach pods on the AK node only through AK's listeners, where
    no network plugin sees them (AK carries the bytes through the remote
    API server), so AK applies the local ingress policies there itself: the
    peer's address names a local pod, whose labels and namespace decide.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ak.core.labels import (
    ANNOTATION_SOURCE_UID,
    LABEL_INGRESS_COVERED,
    LABEL_MANAGED_BY,
    LABEL_NAMESPACE,
    LABEL_NODE,
    LABEL_REPLICA,
    MANAGED_BY_VALUE,
    REPLICA_VALUE,
    ownership_labels,
)
from ak.core.local_apiserver import Endpoint
from ak.core.types import Obj

API_VERSION = "networking.k8s.io/v1"
GROUP_VERSION = API_VERSION

ISOLATION_POLICY = "actual-kubelets-isolation"
"""The default policy: same-node namespaces and the operator's peers, for pods
no translated policy covers."""
PEERS_POLICY = "actual-kubelets-peers"
"""The operator's peers, for every pod of the namespace (only when there are some)."""
DEFAULT_POLICIES = (ISOLATION_POLICY, PEERS_POLICY)

REASON_UNSUPPORTED = "NetworkPolicyNotFullyReflected"
REASON_CONFLICT = "NetworkPolicyConflict"

DNS_PORT = 53
DEFAULT_DNS_PEERS: tuple[Obj, ...] = (
    {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    },
)
"""Where remote pods resolve names: CoreDNS as kubeadm and most distributions label it."""

Labels = Mapping[str, str]


# -- label selectors ----------------------------------------------------------------
def selector_matches(selector: Obj | None, labels: Labels) -> bool:
    """A metav1.LabelSelector against labels; empty (``{}``) matches everything.

    An unknown operator matches nothing: a policy AK misreads must admit less,
    not more."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator")
        values = expr.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            ok = False
        if not ok:
            return False
    return True


def policy_types(spec: Obj) -> list[str]:
    """``policyTypes`` as the API server defaults it."""
    types: list[str] | None = spec.get("policyTypes")
    if types:
        return list(types)
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def selects_for_ingress(policy: Obj, labels: Labels) -> bool:
    spec: Obj = policy.get("spec") or {}
    return "Ingress" in policy_types(spec) and selector_matches(spec.get("podSelector"), labels)


def selects(policy: Obj, labels: Labels) -> bool:
    """Whether a policy selects a pod of its namespace with these labels."""
    return selector_matches((policy.get("spec") or {}).get("podSelector") or {}, labels)


# -- isolation by default -------------------------------------------------------------
def _meta(name: str, remote_namespace: str, node_label: str, local_namespace: str) -> Obj:
    return {
        "name": name,
        "namespace": remote_namespace,
        "labels": ownership_labels(node_label, local_namespace),
    }


def same_node_peer(node_label: str) -> Obj:
    """Every remote namespace of one AK node."""
    return {"namespaceSelector": {"matchLabels": {LABEL_NODE: node_label}}}


def isolation_policies(
    remote_namespace: str, node_label: str, local_namespace: str, peers: Sequence[Obj]
) -> dict[str, Obj | None]:
    """The default policies of one remote namespace, by name (None: must not exist)."""
    isolation: Obj = {
        "apiVersion": API_VERSION,
        "kind": "NetworkPolicy",
        "metadata": _meta(ISOLATION_POLICY, remote_namespace, node_label, local_namespace),
        "spec": {
            "podSelector": {
                "matchExpressions": [{"key": LABEL_INGRESS_COVERED, "operator": "DoesNotExist"}]
            },
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [same_node_peer(node_label), *peers]}],
        },
    }
    peer_policy: Obj | None = None
    if peers:
        peer_policy = {
            "apiVersion": API_VERSION,
            "kind": "NetworkPolicy",
            "metadata": _meta(PEERS_POLICY, remote_namespace, node_label, local_namespace),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": list(peers)}],
            },
        }
    return {ISOLATION_POLICY: isolation, PEERS_POLICY: peer_policy}


def covered(pod_labels: Labels, copies: Iterable[Obj]) -> bool:
    """Whether a remote pod is selected by one of the tenant's translated
    policies with Ingress (``copies``: AK's copies in the pod's namespace)."""
    labels = {k: v for k, v in pod_labels.items() if k != LABEL_INGRESS_COVERED}
    return any(selects_for_ingress(c, labels) for c in copies)


def covered_patch(pod: Obj, want: bool) -> Obj | None:
    """Merge patch setting or removing ``LABEL_INGRESS_COVERED``; None if in step."""
    have = LABEL_INGRESS_COVERED in ((pod.get("metadata") or {}).get("labels") or {})
    if have == want:
        return None
    return {"metadata": {"labels": {LABEL_INGRESS_COVERED: "true" if want else None}}}


# -- the tenant's own policies --------------------------------------------------------
@dataclass(frozen=True)
class Context:
    """What translating a local policy needs to know besides the policy."""

    node_label: str
    # Local namespace -> its labels (the LOCAL cluster's namespaces).
    namespaces: Mapping[str, Labels]
    # The operator's peers, admitted where the tenant admits "every source";
    # None when isolation is off (then "every source" stays every source).
    any_source: Sequence[Obj] | None = ()
    # Where the local API server is, as local pods reach it (its addresses and
    # ports), and the endpoint remote pods are given instead.
    api_addresses: frozenset[str] = frozenset()
    api_ports: frozenset[int] = frozenset()
    endpoint: Endpoint | None = None
    dns_peers: Sequence[Obj] = DEFAULT_DNS_PEERS


@dataclass
class Translation:
    policy: Obj
    problems: list[str] = field(default_factory=list)


def _say(problems: list[str], text: str) -> None:
    if text not in problems:
        problems.append(text)


def _namespace_peer(peer: Obj, ctx: Context) -> Obj | None:
    """A namespaceSelector peer as remote namespaces of this node; None: selects none."""
    local_sel: Obj = peer["namespaceSelector"]
    node_only: Obj = {"matchLabels": {LABEL_NODE: ctx.node_label}}
    if local_sel == {} or not (local_sel.get("matchLabels") or local_sel.get("matchExpressions")):
        remote_sel = node_only
    else:
        names = sorted(
            n for n, labels in ctx.namespaces.items() if selector_matches(local_sel, labels)
        )
        if not names:
            return None
        remote_sel = {
            **node_only,
            "matchExpressions": [{"key": LABEL_NAMESPACE, "operator": "In", "values": names}],
        }
    out: Obj = {"namespaceSelector": remote_sel}
    if peer.get("podSelector") is not None:
        out["podSelector"] = peer["podSelector"]
    return out


def _peer(peer: Obj, ctx: Context, egress: bool, problems: list[str]) -> Obj | None:
    if peer.get("ipBlock") is not None:
        block = peer["ipBlock"]
        _say(
            problems,
            f"ipBlock {block.get('cidr')} is carried as is: on the remote cluster it matches "
            "remote addresses (addresses outside both clusters mean the same; the local "
            "cluster's pod and Service addresses do not)",
        )
        out: Obj = {"cidr": block.get("cidr")}
        if block.get("except"):
            out["except"] = list(block["except"])
        return {"ipBlock": out}
    if egress:
        _say(
            problems,
            "egress to pods reaches only pods on this AK node from the remote cluster: "
            "pods of the local cluster on other nodes cannot be reached from there",
        )
    if peer.get("namespaceSelector") is not None:
        return _namespace_peer(peer, ctx)
    if peer.get("podSelector") is not None:
        return {"podSelector": peer["podSelector"]}
    return None  # an empty peer: invalid, the API server refuses it


def _ports(rule: Obj) -> list[Obj]:
    out = []
    for p in rule.get("ports") or []:
        port: Obj = {"protocol": p.get("protocol") or "TCP"}
        if p.get("port") is not None:
            port["port"] = p["port"]
        if p.get("endPort") is not None:
            port["endPort"] = p["endPort"]
        out.append(port)
    return out


def _port_admits(p: Obj, number: int, protocol: str, named: Mapping[str, int]) -> bool:
    if (p.get("protocol") or "TCP") != protocol:
        return False
    port = p.get("port")
    if port is None:
        return True
    if isinstance(port, str):
        return named.get(port) == number
    end = p.get("endPort")
    return bool(port == number or (end is not None and port <= number <= end))


def ports_admit(
    rule: Obj, number: int, protocol: str, named: Mapping[str, int] | None = None
) -> bool:
    ports = rule.get("ports") or []
    return not ports or any(_port_admits(p, number, protocol, named or {}) for p in ports)


def _ip_in_block(address: str, block: Obj) -> bool:
    try:
        ip = ipaddress.ip_address(address)
        if ip not in ipaddress.ip_network(block.get("cidr", ""), strict=False):
            return False
        return not any(
            ip in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
        )
    except (ValueError, TypeError):
        return False


def _reaches_api(rule: Obj, ctx: Context) -> bool:
    """An egress rule that lets the pod reach the local API server by address."""
    if not any(ports_admit(rule, p, "TCP") for p in ctx.api_ports):
        return False
    if not rule.get("to"):
        # Every destination on the API server's port: the remote pod's endpoint
        # may be another port (a load balancer's 443 before the server's 6443).
        return True
    return any(
        peer.get("ipBlock") is not None and _ip_in_block(a, peer["ipBlock"])
        for peer in rule.get("to") or []
        for a in ctx.api_addresses
    )


def _admits_dns(rule: Obj, ctx: Context) -> bool:
    """An egress rule that lets the pod resolve names locally: it names port 53,
    or admits every port of a peer in the local kube-system namespace."""
    ports = rule.get("ports") or []
    if ports:
        return any(_port_admits(p, DNS_PORT, proto, {}) for p in ports for proto in ("UDP", "TCP"))
    system = ctx.namespaces.get("kube-system")
    return system is not None and any(
        p.get("namespaceSelector") is not None and selector_matches(p["namespaceSelector"], system)
        for p in rule.get("to") or []
    )


def _endpoint_rule(endpoint: Endpoint) -> Obj | None:
    try:
        ip = ipaddress.ip_address(endpoint.host)
    except ValueError:
        return None
    cidr = f"{ip}/{ip.max_prefixlen}"
    return {
        "to": [{"ipBlock": {"cidr": cidr}}],
        "ports": [{"protocol": "TCP", "port": endpoint.port}],
    }


def _egress_extras(rule: Obj, ctx: Context, problems: list[str], extra: list[Obj]) -> None:
    """What an egress rule lets the pod reach locally that lives elsewhere for
    the remote pod: the local API server's endpoint, the DNS."""
    if ctx.endpoint is not None and _reaches_api(rule, ctx):
        endpoint_rule = _endpoint_rule(ctx.endpoint)
        if endpoint_rule is None:
            _say(
                problems,
                f"the local API server is given to remote pods as {ctx.endpoint}, a "
                "name: a NetworkPolicy cannot admit it by name; set local.apiserverHost "
                "to an address",
            )
        elif endpoint_rule not in extra:
            extra.append(endpoint_rule)
    if rule.get("to") and ctx.dns_peers and _admits_dns(rule, ctx):
        dns = {
            "to": [dict(p) for p in ctx.dns_peers],
            "ports": [
                {"protocol": "UDP", "port": DNS_PORT},
                {"protocol": "TCP", "port": DNS_PORT},
            ],
        }
        if dns not in extra:
            extra.append(dns)


def _rules(rules: list[Obj], ctx: Context, egress: bool, problems: list[str]) -> list[Obj]:
    key = "to" if egress else "from"
    out: list[Obj] = []
    extra: list[Obj] = []
    for rule in rules:
        ports = _ports(rule)
        peers: list[Obj] = rule.get(key) or []
        translated: Obj = {}
        if ports:
            translated["ports"] = ports
        if egress:
            _egress_extras(rule, ctx, problems, extra)
        if not peers:
            if not egress and ctx.any_source is not None:
                # The tenant's "anyone" is its own cluster: this node's namespaces,
                # plus the operator's peers (its ingress controller); never the
                # other tenants.
                translated[key] = [same_node_peer(ctx.node_label), *ctx.any_source]
            out.append(translated)
            continue
        remote = [p for p in (_peer(p, ctx, egress, problems) for p in peers) if p is not None]
        if not remote:
            # Every peer selects nothing here: the rule admits nothing. Kept
            # without peers it would admit everything.
            continue
        translated[key] = remote
        out.append(translated)
    return out + extra


def to_remote_policy(local: Obj, *, remote_namespace: str, ctx: Context) -> Translation:
    """The remote copy of a local NetworkPolicy, and what it cannot carry."""
    meta: dict[str, Any] = local["metadata"]
    spec: Obj = local.get("spec") or {}
    problems: list[str] = []
    types = policy_types(spec)
    remote_spec: Obj = {
        "podSelector": spec.get("podSelector") or {},
        "policyTypes": types,
    }
    if "Ingress" in types:
        remote_spec["ingress"] = _rules(spec.get("ingress") or [], ctx, False, problems)
    if "Egress" in types:
        remote_spec["egress"] = _rules(spec.get("egress") or [], ctx, True, problems)
    labels = {
        **(meta.get("labels") or {}),
        **ownership_labels(ctx.node_label, meta["namespace"]),
        LABEL_REPLICA: REPLICA_VALUE,
    }
    policy = {
        "apiVersion": API_VERSION,
        "kind": "NetworkPolicy",
        "metadata": {
            "name": meta["name"],
            "namespace": remote_namespace,
            "labels": labels,
            "annotations": {ANNOTATION_SOURCE_UID: meta.get("uid", "")},
        },
        "spec": remote_spec,
    }
    return Translation(policy, problems)


def _comparable(spec: Obj) -> Obj:
    """A policy spec with the API server's defaults, so desired and current compare."""
    out: Obj = {
        "podSelector": spec.get("podSelector") or {},
        "policyTypes": policy_types(spec),
    }
    for key, peers in (("ingress", "from"), ("egress", "to")):
        rules = []
        for rule in spec.get(key) or []:
            r: Obj = {}
            if rule.get("ports"):
                r["ports"] = _ports(rule)
            if rule.get(peers):
                r[peers] = rule[peers]
            rules.append(r)
        if rules:
            out[key] = rules
    return out


def policy_needs_update(desired: Obj, current: Obj) -> bool:
    want: dict[str, Any] = desired.get("metadata") or {}
    have: dict[str, Any] = current.get("metadata") or {}
    if (want.get("labels") or {}) != (have.get("labels") or {}):
        return True
    have_ann = have.get("annotations") or {}
    if any(have_ann.get(k) != v for k, v in (want.get("annotations") or {}).items()):
        return True
    return _comparable(desired.get("spec") or {}) != _comparable(current.get("spec") or {})


def is_own_policy(obj: Obj, node_label: str, local_namespace: str) -> bool:
    labels: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(LABEL_NODE) == node_label
        and labels.get(LABEL_NAMESPACE) == local_namespace
        and labels.get(LABEL_REPLICA) == REPLICA_VALUE
    )


def is_default_policy(obj: Obj, node_label: str) -> bool:
    """One of the isolation policies AK made (never a tenant's copy)."""
    labels: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return (
        obj.get("metadata", {}).get("name") in DEFAULT_POLICIES
        and labels.get(LABEL_NODE) == node_label
        and labels.get(LABEL_MANAGED_BY) == MANAGED_BY_VALUE
        and LABEL_REPLICA not in labels
    )


def default_needs_update(desired: Obj, current: Obj) -> bool:
    return policy_needs_update(desired, current)


# -- AK's check at the pod addresses ----------------------------------------------------
@dataclass(frozen=True)
class Peer:
    """Who opened a connection to a pod address: its IP and, if that is a local
    pod's, the pod's namespace and labels and the namespace's labels."""

    ip: str
    namespace: str | None = None
    labels: Labels = field(default_factory=dict)
    namespace_labels: Labels = field(default_factory=dict)


def named_ports(pod: Obj) -> dict[str, int]:
    spec: Obj = pod.get("spec") or {}
    return {
        p["name"]: p["containerPort"]
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        for p in c.get("ports") or []
        if p.get("name") and p.get("containerPort") is not None
    }


def _peer_admits(peer_spec: Obj, peer: Peer, namespace: str) -> bool:
    if peer_spec.get("ipBlock") is not None:
        return _ip_in_block(peer.ip, peer_spec["ipBlock"])
    if peer.namespace is None:
        return False  # pod and namespace selectors select pods, and this is none
    if peer_spec.get("namespaceSelector") is not None:
        if not selector_matches(peer_spec["namespaceSelector"], peer.namespace_labels):
            return False
    elif peer.namespace != namespace:
        return False
    if peer_spec.get("podSelector") is not None:
        return selector_matches(peer_spec["podSelector"], peer.labels)
    return peer_spec.get("namespaceSelector") is not None


def admits(policies: Iterable[Obj], pod: Obj, port: int, peer: Peer) -> bool:
    """Whether the local ingress policies of ``pod``'s namespace let ``peer``
    open a TCP connection to ``port`` of ``pod``. No policy selecting the pod
    for Ingress: yes, as on any node."""
    meta: dict[str, Any] = pod["metadata"]
    labels: Labels = meta.get("labels") or {}
    named = named_ports(pod)
    selecting = False
    for policy in policies:
        if not selects_for_ingress(policy, labels):
            continue
        selecting = True
        for rule in (policy.get("spec") or {}).get("ingress") or []:
            if not ports_admit(rule, port, "TCP", named):
                continue
            sources: list[Obj] = rule.get("from") or []
            if not sources or any(_peer_admits(s, peer, meta["namespace"]) for s in sources):
                return True
    return not selecting
