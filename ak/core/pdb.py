"""Local PodDisruptionBudget -> its copy in the remote namespace (drains respect it).

A PDB is "used" while its selector picks a (not finished) pod bound to the AK
node in its namespace; then a copy with the same name lives in the pods'
remote namespace, where remote pods carry their local labels verbatim, so
the same selector picks them, and a remote drain (the Eviction API) asks
the copy before evicting.

The copy cannot be the local PDB as it is: a percentage, and any
``maxUnavailable``, are counted by the disruption controller against the
scale of the pods' controllers (Deployment, StatefulSet...), which exist
only locally; the remote twins are bare pods, for which the remote
controller finds no scale and allows no eviction at all. The one form that
counts bare pods is an integer ``minAvailable`` (the number of pods that
must stay healthy), so every copy is that, computed as the LOCAL disruption
controller computes its ``desiredHealthy`` (pkg/controller/disruption):

* ``minAvailable: N`` -> N;
* ``minAvailable: P%`` -> ceil(P * expected / 100);
* ``maxUnavailable: N`` -> expected - N; ``P%`` -> expected - ceil(P * expected / 100)
  (the unavailable count rounds UP, as ``GetScaledValueFromIntOrPercent(..., true)``),
  never below 0;

where ``expected`` is the local PDB's ``status.expectedPods`` (the
controllers' scale, which the local disruption controller keeps current as
replicas change), and never less than the pods of the node it selects (a
status not written yet must not make the budget looser). The copy follows
the local status, so it follows scaling.

The copy counts only the node's pods: a PDB that also selects pods on other
local nodes is stricter remotely than locally (its pods elsewhere are not
seen there), never looser.
"""

import math
from typing import Any

from ak.core.labels import ANNOTATION_SOURCE_UID, LABEL_REPLICA, REPLICA_VALUE, ownership_labels
from ak.core.netpol import selector_matches
from ak.core.types import Obj

API_VERSION = "policy/v1"
GROUP_VERSION = API_VERSION
REASON_CONFLICT = "PodDisruptionBudgetConflict"
"""Event reason on a local PDB whose copy's name is taken by a remote PDB AK did not make."""


def selects(pdb: Obj, pod: Obj) -> bool:
    """Whether a PDB covers a pod of its namespace. policy/v1: an empty selector
    picks every pod, a missing one none."""
    sel = (pdb.get("spec") or {}).get("selector")
    if sel is None:
        return False
    labels: dict[str, str] = (pod.get("metadata") or {}).get("labels") or {}
    return selector_matches(sel, labels)


def scaled(value: int | str, total: int) -> int:
    """An IntOrString as the disruption controller scales it (percentages round up)."""
    if isinstance(value, int):
        return value
    if value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def desired_healthy(spec: Obj, expected: int) -> int:
    """How many pods must stay healthy, as the disruption controller decides it."""
    if spec.get("maxUnavailable") is not None:
        return max(0, expected - scaled(spec["maxUnavailable"], expected))
    min_available = spec.get("minAvailable")
    if min_available is None:
        return 0
    return scaled(min_available, expected)


def expected_pods(local: Obj, pods_here: int) -> int:
    status: dict[str, Any] = local.get("status") or {}
    return max(int(status.get("expectedPods") or 0), pods_here)


def to_remote_pdb(local: Obj, *, node_label: str, remote_namespace: str, pods_here: int) -> Obj:
    """The remote copy of a local PDB: an absolute ``minAvailable``."""
    meta: dict[str, Any] = local["metadata"]
    spec: Obj = local.get("spec") or {}
    remote_spec: Obj = {
        "minAvailable": desired_healthy(spec, expected_pods(local, pods_here)),
        "selector": spec.get("selector") or {},
    }
    if spec.get("unhealthyPodEvictionPolicy"):
        remote_spec["unhealthyPodEvictionPolicy"] = spec["unhealthyPodEvictionPolicy"]
    return {
        "apiVersion": API_VERSION,
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": meta["name"],
            "namespace": remote_namespace,
            "labels": {
                **(meta.get("labels") or {}),
                **ownership_labels(node_label, meta["namespace"]),
                LABEL_REPLICA: REPLICA_VALUE,
            },
            "annotations": {ANNOTATION_SOURCE_UID: meta.get("uid", "")},
        },
        "spec": remote_spec,
    }


def pdb_needs_update(desired: Obj, current: Obj) -> bool:
    """Labels exactly (they are AK's), AK's annotations, and the spec AK sets."""
    want: dict[str, Any] = desired.get("metadata") or {}
    have: dict[str, Any] = current.get("metadata") or {}
    if (want.get("labels") or {}) != (have.get("labels") or {}):
        return True
    have_ann = have.get("annotations") or {}
    if any(have_ann.get(k) != v for k, v in (want.get("annotations") or {}).items()):
        return True
    want_spec, have_spec = desired.get("spec") or {}, current.get("spec") or {}
    return any(
        want_spec.get(k) != have_spec.get(k)
        for k in ("minAvailable", "maxUnavailable", "selector", "unhealthyPodEvictionPolicy")
    )
