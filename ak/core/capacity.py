"""Node capacity from the remote cluster ("auto"): what is actually left there.

The sum of allocatable of Ready, schedulable remote nodes, minus what remote
pods of OTHER tenants request (this node's own pods are what the capacity is
for), times a fraction so that several AK nodes sharing one remote cluster
need not all claim all of it.
"""

from collections import defaultdict
from decimal import Decimal

from ak.core.labels import LABEL_NODE
from ak.core.quantity import format_quantity, parse_quantity
from ak.core.types import Obj

_TERMINAL = ("Succeeded", "Failed")


def _ready(node: Obj) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    """Effective requests, as the scheduler counts them: the sum over containers,
    or the largest init container if larger, plus overhead. Pod-level requests
    (``spec.resources``, PodLevelResources: CPU, memory and hugepages, which the
    API server validates) stand for the containers' of the same resource."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = defaultdict(Decimal)
    for c in spec.get("containers") or []:
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            total[k] += parse_quantity(v)
    for c in spec.get("initContainers") or []:
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            total[k] = max(total[k], parse_quantity(v))
    for k, v in ((spec.get("resources") or {}).get("requests") or {}).items():
        total[k] = parse_quantity(v)
    for k, v in (spec.get("overhead") or {}).items():
        total[k] += parse_quantity(v)
    return dict(total)


def auto_capacity(
    nodes: list[Obj], pods: list[Obj], node_label: str, fraction: float
) -> dict[str, str]:
    usable = {n["metadata"]["name"]: n for n in nodes if _ready(n)}
    free: dict[str, Decimal] = defaultdict(Decimal)
    for n in usable.values():
        for k, v in ((n.get("status") or {}).get("allocatable") or {}).items():
            free[k] += parse_quantity(v)
    for p in pods:
        if (p.get("status") or {}).get("phase") in _TERMINAL:
            continue
        if (p.get("spec") or {}).get("nodeName") not in usable:
            continue
        if (p["metadata"].get("labels") or {}).get(LABEL_NODE) == node_label:
            continue
        for k, v in pod_requests(p).items():
            free[k] -= v
        free["pods"] -= 1
    share = Decimal(str(fraction))
    return {k: format_quantity(k, v * share) for k, v in sorted(free.items())}
