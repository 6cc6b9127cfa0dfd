"""Remote pod Events as Events on the local pod, so `kubectl describe` on the
local cluster shows why a pod is stuck (ImagePullBackOff, FailedMount...).

The local Event's name is derived from the remote Event's UID: a repeat of the
same remote Event (its count going up) and an AK restart both land on the same
local object instead of piling up copies.

After a restart the watches list every remote Event again. Those last seen
before the previous AK's last heartbeat (its node Lease's ``renewTime``) were
mirrored by it then, so they are not written again: at 10,000 pods that was
~750 writes per restart. ``HEARTBEAT_SLACK`` covers the remote cluster's clock
being ahead of AK's and an Event still queued when the previous AK stopped.
"""

from datetime import datetime
from typing import Any

from ak.core.events import MESSAGE_MAX
from ak.core.names import fnv1_64
from ak.core.timefmt import parse_time
from ak.core.types import Obj
from ak.core.validation import DNS_SUBDOMAIN_MAX

COMPONENT = "actual-kubelets"
MAX_AGE = 600.0  # seconds: older Events found at start-up are history, not news
HEARTBEAT_SLACK = 10.0
NOT_MIRRORED = frozenset({"Scheduled"})
"""The remote scheduler's "Successfully assigned" is not news locally: the local
pod has its own Scheduled Event (or was bound directly), and the remote node's
address is in the pod's ``status.hostIP``. It was one local write per pod."""


def worth_mirroring(event: Obj, started: datetime, mirrored_before: datetime | None) -> bool:
    """Whether a remote Event seen by an AK started at ``started`` is written
    locally; ``mirrored_before`` is the previous AK's last heartbeat, if any."""
    if event.get("reason") in NOT_MIRRORED:
        return False
    stamp = event.get("lastTimestamp") or event.get("eventTime")
    if not stamp:
        return True
    try:
        last = parse_time(stamp)
    except ValueError:
        return True
    if (started - last).total_seconds() >= MAX_AGE:
        return False
    return mirrored_before is None or (mirrored_before - last).total_seconds() < HEARTBEAT_SLACK


def mirrored_event_name(local_pod_name: str, remote_uid: str) -> str:
    suffix = f"ak{fnv1_64(remote_uid.encode()):016x}"
    base = local_pod_name[: DNS_SUBDOMAIN_MAX - 1 - len(suffix)].rstrip("-.")
    return f"{base}.{suffix}"


def _first(event: Obj, *keys: str) -> Any:
    for key in keys:
        if event.get(key):
            return event[key]
    return None


def mirrored_event(remote: Obj, local_pod: Obj, node_name: str) -> Obj:
    """The local Event mirroring ``remote`` (an Event about the remote twin of ``local_pod``)."""
    meta = local_pod["metadata"]
    involved: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta.get("uid", ""),
    }
    field_path = (remote.get("involvedObject") or {}).get("fieldPath")
    if field_path:
        involved["fieldPath"] = field_path
    source = remote.get("source") or {}
    component = source.get("component") or remote.get("reportingComponent") or "remote"
    first = _first(remote, "firstTimestamp", "eventTime") or remote["metadata"].get(
        "creationTimestamp"
    )
    last = _first(remote, "lastTimestamp", "eventTime") or first
    series = remote.get("series") or {}
    count = max(int(remote.get("count") or 0), int(series.get("count") or 0), 1)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": mirrored_event_name(meta["name"], remote["metadata"]["uid"]),
            "namespace": meta["namespace"],
        },
        "involvedObject": involved,
        "reason": remote.get("reason", ""),
        "message": f"{remote.get('message', '')} (on the remote cluster)"[:MESSAGE_MAX],
        "type": remote.get("type") or "Normal",
        "count": count,
        "firstTimestamp": first,
        "lastTimestamp": last,
        # The remote component, so "From" in kubectl describe says who saw it.
        "source": {"component": f"{component} (remote)", "host": node_name},
        "reportingComponent": COMPONENT,
        "reportingInstance": node_name,
    }


def mirror_patch(desired: Obj) -> Obj:
    """What changes when the remote Event repeats."""
    return {
        "count": desired["count"],
        "lastTimestamp": desired["lastTimestamp"],
        "message": desired["message"],
    }
