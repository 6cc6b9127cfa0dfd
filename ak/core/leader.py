"""Leader election between AK replicas of one node, on the node's own Lease.

A kubelet identity may write exactly one Lease: ``kube-node-lease/<node>``
(NodeRestriction). That Lease is the node heartbeat, and only the leader may
heartbeat anyway, so it doubles as the lock: ``holderIdentity`` names the
replica (``<node>/<replica>``); a replica takes over once ``renewTime`` is
older than ``leaseDurationSeconds``. The node lifecycle controller reads
only ``renewTime``, so the holder's name does not matter to it.
"""

from datetime import datetime
from typing import Literal

from ak.core.codec import clone
from ak.core.node import lease_object
from ak.core.timefmt import format_micro_time, parse_time
from ak.core.types import Obj

State = Literal["mine", "free", "held"]


def lease_state(lease: Obj | None, me: str, now: datetime) -> State:
    if lease is None:
        return "free"
    spec = lease.get("spec") or {}
    if spec.get("holderIdentity") == me:
        return "mine"
    renew = spec.get("renewTime") or spec.get("acquireTime")
    duration = int(spec.get("leaseDurationSeconds") or 0)
    if not renew or not spec.get("holderIdentity"):
        return "free"
    age = (now - parse_time(renew)).total_seconds()
    return "free" if age > duration else "held"


def last_heartbeat(lease: Obj | None) -> datetime | None:
    """When the Lease was last renewed (by whichever process held it)."""
    spec = (lease or {}).get("spec") or {}
    stamp = spec.get("renewTime") or spec.get("acquireTime")
    if not stamp:
        return None
    try:
        return parse_time(stamp)
    except ValueError:
        return None


def claimed(
    lease: Obj | None, me: str, *, node_name: str, node_uid: str, duration: int, now: datetime
) -> Obj:
    """The Lease with ``me`` holding it, renewed now; keeps resourceVersion for an
    optimistic update, so two replicas claiming at once cannot both win."""
    fresh = lease_object(node_name, node_uid, duration_seconds=duration, now=now)
    if lease is None:
        body = fresh
    else:
        body = clone(lease)
        spec = body.setdefault("spec", {})
        if spec.get("holderIdentity") != me:
            spec["acquireTime"] = format_micro_time(now)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec["renewTime"] = fresh["spec"]["renewTime"]
        spec["leaseDurationSeconds"] = duration
        if node_uid and not body["metadata"].get("ownerReferences"):
            body["metadata"]["ownerReferences"] = fresh["metadata"]["ownerReferences"]
    body["spec"]["holderIdentity"] = me
    body["spec"].setdefault("acquireTime", format_micro_time(now))
    if not node_uid:
        body["metadata"].pop("ownerReferences", None)
    return body
