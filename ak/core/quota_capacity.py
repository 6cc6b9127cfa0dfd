"""Remote limits visible locally: the node never advertises more than the
tenant's remote ResourceQuotas still allow, so the local scheduler stops
before the remote cluster would refuse a pod.

Quotas are per remote namespace, the node's capacity is one figure for all of
them. The node-level view chosen is the conservative one: what this node's
pods already use everywhere plus the *least* headroom left in any of its
remote namespaces (or the template's whole quota, for a namespace not yet
made). A pod scheduled to the node then fits its namespace's quota whichever
namespace it comes from; the price is that a full namespace also holds back
pods of the others (they wait Pending locally, as on a full node, rather than
being refused remotely).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from ak.core.quantity import format_quantity, parse_quantity
from ak.core.types import Obj

_PLAIN = ("cpu", "memory", "ephemeral-storage")


def node_resource(quota_key: str) -> str | None:
    """The node resource a quota's ``hard`` key limits: ``cpu`` and
    ``requests.cpu`` limit requested CPU, ``requests.example.com/gpu`` an
    extended resource, ``pods`` the pod count; limits and object counts do
    not bear on what the scheduler counts."""
    if quota_key == "pods" or quota_key in _PLAIN:
        return quota_key
    if quota_key.startswith("requests."):
        return quota_key.removeprefix("requests.")
    return None


def _limits(hard: Mapping[str, str]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for key, text in hard.items():
        resource = node_resource(key)
        if resource is None:
            continue
        value = parse_quantity(text)
        out[resource] = min(out.get(resource, value), value)
    return out


def quota_limits(quotas: Iterable[Obj], template_hard: Mapping[str, str]) -> dict[str, Decimal]:
    """Per node resource, the most this node may advertise: used in all its
    remote namespaces plus the least headroom of any of them (``quotas``: the
    ResourceQuotas in this node's remote namespaces, with their status)."""
    used_total: dict[str, Decimal] = {}
    headroom = _limits(template_hard)
    for quota in quotas:
        status = quota.get("status") or {}
        hard = _limits(status.get("hard") or (quota.get("spec") or {}).get("hard") or {})
        used = _limits(status.get("used") or {})
        for resource, limit in hard.items():
            taken = used.get(resource, Decimal(0))
            used_total[resource] = used_total.get(resource, Decimal(0)) + taken
            left = max(limit - taken, Decimal(0))
            headroom[resource] = min(headroom.get(resource, left), left)
    return {r: used_total.get(r, Decimal(0)) + left for r, left in headroom.items()}


def capped(resources: Mapping[str, str], limits: Mapping[str, Decimal]) -> dict[str, str]:
    """``resources`` with each figure no larger than its limit; a resource the
    node does not advertise is not added."""
    out = dict(resources)
    for resource, limit in limits.items():
        if resource in out and parse_quantity(out[resource]) > limit:
            out[resource] = format_quantity(resource, limit)
    return out
