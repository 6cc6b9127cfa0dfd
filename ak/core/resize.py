"""In-place resize: a local pod's new CPU and memory carried to its twin, and
the remote's answer brought back.

Kubernetes resizes a running pod through its ``resize`` subresource: the
containers' resources change in the spec, the kubelet applies them without a
restart, or says why not in the ``PodResizePending`` (reason ``Deferred`` or
``Infeasible``) and ``PodResizeInProgress`` conditions, and
``status.containerStatuses[].resources``/``allocatedResources`` show where it
stands. On the AK node the local API server accepts the resize; AK patches
the twin's ``resize`` subresource with the same values (``resize_patch``), and
the remote kubelet's answer comes back with the rest of the status
(``status.local_status``: the conditions are the kubelet's, so the remote's).
Pod-level resources (``spec.resources``, resizable in place since
InPlacePodLevelResourcesVerticalScaling, beta and on in 1.36) are carried the
same way, and the kubelet's ``status.resources``/``allocatedResources`` for
the pod as a whole come back with the containers'.

The remote API server may refuse what the local one took: its
PodResizeValidator compares the requests with the remote node's allocatable
(the AK node advertises the capacity of many), and a remote quota or
LimitRange may say no. A kubelet reports a resize it can never do as
``PodResizePending``/``Infeasible``; so does AK for a refused one
(``with_refused_resize``), with the remote's message.
"""

import json
from datetime import datetime
from typing import Any

from ak.core.conditions import find_condition, set_condition
from ak.core.quantity import parse_quantity
from ak.core.timefmt import format_time
from ak.core.types import Obj

RESIZE_PENDING = "PodResizePending"
RESIZE_IN_PROGRESS = "PodResizeInProgress"
RESIZE_CONDITIONS = frozenset({RESIZE_PENDING, RESIZE_IN_PROGRESS})
REASON_INFEASIBLE = "Infeasible"
REASON_ERROR = "Error"

# Only these may change in place (the API server refuses anything else), so
# only these are compared: a key the remote's LimitRange defaulted (one the
# local pod does not set) is never "changed".
_RESIZABLE = ("cpu", "memory")
_CONTAINER_LISTS = ("initContainers", "containers")


def _same(want: Any, have: Any) -> bool:
    # Both API servers canonicalise quantities alike, but "0.3" and "300m" are
    # one value to either; compare values, not spellings.
    if have is None:
        return False
    try:
        return parse_quantity(want) == parse_quantity(have)
    except (ValueError, TypeError):
        return bool(want == have)


def _resources_change(local: Obj, remote: Obj) -> Obj | None:
    """What differs between the ``resources`` of ``local`` and ``remote`` (a
    container or a pod spec): the CPU and memory requests and limits to send."""
    wanted: dict[str, Any] = local.get("resources") or {}
    current: dict[str, Any] = remote.get("resources") or {}
    change: Obj = {}
    for kind in ("requests", "limits"):
        have: dict[str, Any] = current.get(kind) or {}
        differ = {
            name: value
            for name, value in (wanted.get(kind) or {}).items()
            if name in _RESIZABLE and not _same(value, have.get(name))
        }
        if differ:
            change[kind] = differ
    return change or None


def _container_change(local: Obj, remote: Obj) -> Obj | None:
    change = _resources_change(local, remote)
    return {"name": local["name"], "resources": change} if change else None


def resize_patch(local: Obj, remote: Obj) -> Obj | None:
    """Strategic merge patch for the twin's ``resize`` subresource that gives
    it (the pod's own ``spec.resources`` and its containers') the local pod's
    CPU and memory, or None if it has them.

    Only the values that differ are sent: resources merge key by key, so
    what the remote added (LimitRange defaults) stays. Removing a request or
    limit is no resize (the API server refuses it), so none is sent.
    """
    local_spec: dict[str, Any] = local.get("spec") or {}
    remote_spec: dict[str, Any] = remote.get("spec") or {}
    spec: Obj = {}
    for field in _CONTAINER_LISTS:
        theirs = {c.get("name"): c for c in remote_spec.get(field) or []}
        changes = [
            change
            for c in local_spec.get(field) or []
            if c.get("name") in theirs
            and (change := _container_change(c, theirs[c["name"]])) is not None
        ]
        if changes:
            spec[field] = changes
    pod_level = _resources_change(local_spec, remote_spec)
    if pod_level:
        spec["resources"] = pod_level
    return {"spec": spec} if spec else None


def patch_key(patch: Obj) -> str:
    """One resize as a string: a refused one is not tried again until the
    local pod asks for something else."""
    return json.dumps(patch, sort_keys=True, separators=(",", ":"))


def with_refused_resize(status: Obj, old: Obj, message: str, now: datetime) -> Obj:
    """``status`` with ``PodResizePending``/``Infeasible`` carrying ``message``:
    the remote refused the resize the local pod asks for. ``old`` is the
    status the local pod has, whose condition keeps its transition time."""
    condition = {
        "type": RESIZE_PENDING,
        "status": "True",
        "reason": REASON_INFEASIBLE,
        "message": message,
    }
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != RESIZE_PENDING]
    previous = find_condition(old.get("conditions") or [], RESIZE_PENDING)
    if previous is not None:
        # ``local_status`` dropped AK's own condition (the remote has none):
        # put it back first, so an unchanged one keeps its time and stays unwritten.
        conditions.append(previous)
    result = dict(status)
    result["conditions"] = set_condition(conditions, condition, format_time(now))
    return result


def resize_problem(remote: Obj) -> tuple[str, str] | None:
    """(reason, message) of a resize the remote kubelet is not doing: pending
    (Deferred, Infeasible) or failed in progress (Error); None otherwise."""
    conditions = (remote.get("status") or {}).get("conditions") or []
    pending = find_condition(conditions, RESIZE_PENDING)
    if pending is not None and pending.get("status") == "True":
        return pending.get("reason") or "", pending.get("message") or ""
    progress = find_condition(conditions, RESIZE_IN_PROGRESS)
    if progress is not None and progress.get("reason") == REASON_ERROR:
        return REASON_ERROR, progress.get("message") or ""
    return None
