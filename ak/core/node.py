"""The virtual Node, its status heartbeats and its Lease.

Only the status the kubelet owns is ever patched. ``declaredFeatures`` (the
API server and scheduler refuse what needs a feature the node does not
declare) holds only ``DECLARED_FEATURES``: declaring any other feature
(``ExtendWebSocketsToKubelet`` in particular) would make the API server rely
on behaviour AK may not have.
"""

import uuid
from datetime import datetime
from typing import Any

from ak.core.codec import clone
from ak.core.conditions import find_condition
from ak.core.labels import TAINT_EFFECT, TAINT_KEY, TAINT_VALUE
from ak.core.names import fnv1_64, node_label_value
from ak.core.node_labels import invalid_node_labels
from ak.core.quantity import parse_quantity
from ak.core.timefmt import format_micro_time, format_time, parse_time
from ak.core.types import Obj

NODE_LEASE_NAMESPACE = "kube-node-lease"

# The kubelet's wording, so dashboards and runbooks keyed on it keep working.
_PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)
_MAP_FIELDS = ("capacity", "allocatable")
_REPLACED_FIELDS = ("addresses", "daemonEndpoints", "nodeInfo", "declaredFeatures")
# What AK does as a kubelet would: a pod-level resize is carried to the remote
# pod (ak/core/resize.py); without the declaration the local API server refuses
# it ("pod update requires features InPlacePodLevelResourcesVerticalScaling").
DECLARED_FEATURES = ("InPlacePodLevelResourcesVerticalScaling",)


def _condition(type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }


def _node_labels(name: str, labels: dict[str, str]) -> dict[str, str]:
    # User labels win: e.g. kubernetes.io/arch=arm64 when the remote cluster
    # runs arm64 nodes, so pods select the virtual node correctly.
    defaults = {
        "type": "virtual-kubelet",
        "kubernetes.io/hostname": node_label_value(name),
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
    }
    return {**defaults, **labels}


def _node_info(name: str, version: str, labels: dict[str, str]) -> Obj:
    # Stable per node name, so a restart does not look like a new machine.
    machine_id = f"{fnv1_64(name.encode()):016x}{fnv1_64(b'machine:' + name.encode()):016x}"
    return {
        "machineID": machine_id,
        "systemUUID": str(uuid.UUID(hex=machine_id)),
        "bootID": "",
        "kernelVersion": "",
        "osImage": f"Actual Kubelets {version}",
        "containerRuntimeVersion": f"actual-kubelets://{version}",
        "kubeletVersion": version,
        "kubeProxyVersion": "",
        "operatingSystem": labels["kubernetes.io/os"],
        "architecture": labels["kubernetes.io/arch"],
    }


def node_object(
    *,
    name: str,
    labels: dict[str, str],
    taint: bool,
    addresses: list[Obj],
    kubelet_port: int,
    version: str,
    capacity: dict[str, str],
    allocatable: dict[str, str],
    ready: bool,
    ready_reason: str,
    ready_message: str,
    now: datetime,
    conditions: tuple[tuple[str, str, str, str], ...] = (),
) -> Obj:
    """The Node AK registers. ``conditions``: more of them, as (type, status,
    reason, message), after Ready. Raises ``ValueError`` for labels the API
    server would refuse (see ``invalid_node_labels``)."""
    invalid = invalid_node_labels(labels)
    if invalid:
        raise ValueError(f"node labels not allowed: {', '.join(invalid)}")
    ts = format_time(now)
    all_labels = _node_labels(name, labels)
    all_conditions = [_condition(t, "False", r, m, ts) for t, r, m in _PRESSURE_CONDITIONS]
    ready_status = "True" if ready else "False"
    all_conditions.append(_condition("Ready", ready_status, ready_reason, ready_message, ts))
    all_conditions += [_condition(t, st, r, m, ts) for t, st, r, m in conditions]
    spec: Obj = {}
    if taint:
        spec["taints"] = [{"key": TAINT_KEY, "value": TAINT_VALUE, "effect": TAINT_EFFECT}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": spec,
        "status": {
            "addresses": clone(addresses),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "nodeInfo": _node_info(name, version, all_labels),
            "capacity": dict(capacity),
            "allocatable": dict(allocatable),
            "conditions": all_conditions,
            "declaredFeatures": list(DECLARED_FEATURES),
        },
    }


def _beat(desired: Obj, current: Obj | None, now: str) -> Obj:
    result = clone(desired)
    result["lastHeartbeatTime"] = now
    same = current is not None and current.get("status") == desired.get("status")
    result["lastTransitionTime"] = (current or {}).get("lastTransitionTime", now) if same else now
    return result


def _without_heartbeats(conditions: list[Obj]) -> list[Obj]:
    stripped = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in conditions]
    return sorted(stripped, key=lambda c: str(c.get("type", "")))


def _same_quantity(a: str | None, b: str) -> bool:
    # The API server stores quantities canonically ("64000m" comes back as "64").
    if a == b:
        return True
    try:
        return a is not None and parse_quantity(a) == parse_quantity(b)
    except ValueError:
        return False


def _map_patch(current: dict[str, str], desired: dict[str, str]) -> dict[str, str | None]:
    patch: dict[str, str | None] = {
        k: v for k, v in desired.items() if not _same_quantity(current.get(k), v)
    }
    patch.update({k: None for k in current.keys() - desired.keys()})
    return patch


def _heartbeat_fresh(current: list[Obj], types: set[str], now: datetime, max_age: float) -> bool:
    beats = [(find_condition(current, t) or {}).get("lastHeartbeatTime") for t in types]
    if not beats or any(not b for b in beats):
        return False
    oldest = min(parse_time(b) for b in beats if b)
    return (now - oldest).total_seconds() < max_age


def node_status_patch(
    current_node: Obj, desired_status: Obj, now: datetime, max_age_seconds: float = 60.0
) -> Obj | None:
    """JSON merge patch ``{"status": ...}`` for the Node, or None.

    None when only heartbeats would change and the last one is younger than
    ``max_age_seconds``. Conditions AK does not own (set by the node
    lifecycle controller, node-problem-detector...) are kept in the list,
    since a merge patch replaces lists whole.
    """
    current: dict[str, Any] = current_node.get("status") or {}
    ts = format_time(now)
    current_conditions: list[Obj] = current.get("conditions") or []
    conditions = [
        _beat(c, find_condition(current_conditions, c["type"]), ts)
        for c in desired_status.get("conditions") or []
    ]
    ours = {c["type"] for c in conditions}
    conditions += [clone(c) for c in current_conditions if c.get("type") not in ours]
    patch: Obj = {}
    for field in _REPLACED_FIELDS:
        if field in desired_status and desired_status[field] != current.get(field):
            patch[field] = clone(desired_status[field])
    for field in _MAP_FIELDS:
        changes = _map_patch(current.get(field) or {}, desired_status.get(field) or {})
        if changes:
            patch[field] = changes
    unchanged = not patch and (
        _without_heartbeats(conditions) == _without_heartbeats(current_conditions)
    )
    if unchanged and _heartbeat_fresh(current_conditions, ours, now, max_age_seconds):
        return None
    patch["conditions"] = conditions
    return {"status": patch}


def lease_object(
    node_name: str, node_uid: str, *, duration_seconds: int = 40, now: datetime
) -> Obj:
    """The node's Lease, as the kubelet writes it (owned by the Node so it is
    garbage-collected with it)."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": NODE_LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}
            ],
        },
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": duration_seconds,
            "renewTime": format_micro_time(now),
        },
    }


def node_is_ready(node: Obj) -> bool:
    """Whether the Node's status says Ready=True (what schedulers and kubectl see)."""
    ready = find_condition((node.get("status") or {}).get("conditions") or [], "Ready")
    return ready is not None and ready.get("status") == "True"
