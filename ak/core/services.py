"""Local Service -> its copy in the remote namespace (east-west on the remote side).

A Service is "used" while its selector matches a pod bound to the AK node in
its namespace; then a copy with the same name lives in the pod's remote
namespace. Remote pods carry their local labels verbatim (``core/pods.py``),
so the same selector picks the same pods there, and the REMOTE endpoint
controllers fill the copy's EndpointSlices from remote pod readiness. Since
the copy has the Service's name in the pods' own namespace, ``svc`` resolves
through the pods' DNS search path.

The copy is built from an ALLOW-LIST, as pods are: ports (without nodePort),
selector, sessionAffinity(+Config), publishNotReadyAddresses, headless-ness.
Never copied: clusterIP(s) and ipFamilies (the remote allocates its own),
nodePorts, healthCheckNodePort and every load-balancer field (they would
expose a tenant's pods on the remote cluster's nodes or cloud load balancers,
which AK's remote access must not be able to do), externalIPs (CVE-2020-8554:
a tenant could intercept traffic to any address), internalTrafficPolicy
(``Local`` means "same node"; on the local cluster every AK pod is on the one
AK node, remotely they are spread over many, so ``Local`` would cut traffic
that works locally), annotations (none that matter are known to AK yet).

Every type is reflected as ClusterIP (headless stays headless): what a
NodePort or LoadBalancer adds is reaching the pods from outside, which the
remote copy cannot give the local cluster; ``unsupported`` says so in a
Warning Event. ExternalName Services have no selector and are not reflected.
"""

from typing import Any

from ak.core.labels import (
    ANNOTATION_SOURCE_UID,
    LABEL_NAMESPACE,
    LABEL_NODE,
    LABEL_REPLICA,
    REPLICA_VALUE,
    ownership_labels,
)
from ak.core.names import node_label_value
from ak.core.types import Obj

REASON_UNSUPPORTED = "ServiceNotFullyReflected"
"""Event reason on a local Service whose remote copy lacks something it asks for."""

REASON_CONFLICT = "ServiceConflict"
"""Event reason on a local Service whose copy's name is taken by a remote Service
AK did not make."""

DEFAULT_AFFINITY_TIMEOUT = 10800
"""``sessionAffinityConfig.clientIP.timeoutSeconds`` the API server defaults to."""


def selector(service: Obj) -> dict[str, str]:
    """The pod selector AK reflects by: empty for ExternalName and selector-less Services."""
    spec: dict[str, Any] = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return {}
    return dict(spec.get("selector") or {})


def selects(sel: dict[str, str], pod: Obj) -> bool:
    """Whether a Service selector picks ``pod`` (equality on every key, as the
    endpoint controllers match). An empty selector picks nothing: such a
    Service's endpoints are managed by hand, and none of them is on AK."""
    if not sel:
        return False
    labels: dict[str, str] = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in sel.items())


def _port(port: Obj) -> Obj:
    # Defaults filled in as the API server does, so desired and current compare equal.
    out: Obj = {
        "port": port["port"],
        "protocol": port.get("protocol") or "TCP",
        "targetPort": port.get("targetPort", port["port"]),
    }
    for key in ("name", "appProtocol"):
        if port.get(key):
            out[key] = port[key]
    return out


def _is_headless(spec: Obj) -> bool:
    return spec.get("clusterIP") == "None"


def _spec(local_spec: Obj) -> Obj:
    spec: Obj = {
        "type": "ClusterIP",
        "selector": dict(local_spec.get("selector") or {}),
        "ports": [_port(p) for p in local_spec.get("ports") or []],
        "sessionAffinity": local_spec.get("sessionAffinity") or "None",
        "publishNotReadyAddresses": bool(local_spec.get("publishNotReadyAddresses")),
    }
    if _is_headless(local_spec):
        spec["clusterIP"] = "None"
    if spec["sessionAffinity"] == "ClientIP":
        client_ip = (local_spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        timeout = client_ip.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": timeout}}
    return spec


def to_remote_service(local: Obj, *, node_name: str, remote_namespace: str) -> Obj:
    """The remote copy of a local Service (see the module docstring for what is kept)."""
    meta: dict[str, Any] = local["metadata"]
    labels = {
        **(meta.get("labels") or {}),
        **ownership_labels(node_label_value(node_name), meta["namespace"]),
        LABEL_REPLICA: REPLICA_VALUE,
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": meta["name"],
            "namespace": remote_namespace,
            "labels": labels,
            "annotations": {ANNOTATION_SOURCE_UID: meta.get("uid", "")},
        },
        "spec": _spec(local.get("spec") or {}),
    }


def _comparable(spec: Obj) -> Obj:
    """The part of a Service spec AK sets, with the API server's defaults applied."""
    view = _spec(spec)
    view["type"] = spec.get("type") or "ClusterIP"
    return view


def service_needs_update(desired: Obj, current: Obj) -> bool:
    """Whether the remote copy differs from ``desired`` in what AK sets.

    Labels must match exactly (they are AK's); annotations only need to contain
    AK's, so remote tooling may annotate copies without an update loop. The
    remote's allocations (clusterIP, ipFamilies) are not compared: an update
    that omits them keeps them.
    """
    want_meta: dict[str, Any] = desired.get("metadata") or {}
    have_meta: dict[str, Any] = current.get("metadata") or {}
    if (want_meta.get("labels") or {}) != (have_meta.get("labels") or {}):
        return True
    have_annotations = have_meta.get("annotations") or {}
    if any(have_annotations.get(k) != v for k, v in (want_meta.get("annotations") or {}).items()):
        return True
    return _comparable(desired.get("spec") or {}) != _comparable(current.get("spec") or {})


def service_needs_replace(desired: Obj, current: Obj) -> bool:
    """Headless <-> ClusterIP: the API server forbids changing clusterIP in place."""
    return _is_headless(desired.get("spec") or {}) != _is_headless(current.get("spec") or {})


def is_own_service(obj: Obj, node_label: str, local_namespace: str) -> bool:
    """Whether a remote Service is AK's copy for this node and local namespace;
    one a remote user made under the same name is never touched."""
    labels: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(LABEL_NODE) == node_label
        and labels.get(LABEL_NAMESPACE) == local_namespace
        and labels.get(LABEL_REPLICA) == REPLICA_VALUE
    )


def unsupported(local: Obj) -> list[str]:
    """What the local Service asks for that its remote copy cannot give: one
    sentence each, for a Warning Event; empty when the copy is faithful."""
    spec: dict[str, Any] = local.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    problems: list[str] = []
    if kind in ("NodePort", "LoadBalancer"):
        problems.append(
            f"type {kind} is reflected as ClusterIP: its pods on the AK node are not "
            "reachable through node ports or a load balancer"
        )
    if spec.get("externalIPs"):
        problems.append("externalIPs are not reflected")
    if spec.get("externalTrafficPolicy") == "Local":
        problems.append("externalTrafficPolicy Local has no effect for pods on the AK node")
    if spec.get("loadBalancerSourceRanges"):
        problems.append("loadBalancerSourceRanges are not reflected")
    for port in spec.get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        if protocol != "TCP":
            problems.append(
                f"port {port.get('port')}/{protocol} reaches pods on the AK node only from the "
                "remote cluster: AK carries TCP only from the local cluster"
            )
    if spec.get("internalTrafficPolicy") == "Local":
        problems.append(
            "internalTrafficPolicy Local is reflected as Cluster: the pods of the AK "
            "node run on several remote nodes"
        )
    return problems
