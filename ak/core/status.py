"""Remote pod status -> local pod status, and statuses AK makes up itself.

Ownership of conditions:

* ``PodScheduled`` and ``DisruptionTarget`` belong to the LOCAL cluster: the
  local pod is bound to the virtual node, so PodScheduled stays the local
  True even while the remote pod waits for a remote node; DisruptionTarget is
  set by local eviction.
* Readiness-gate conditions belong to the local cluster (the remote pod has
  no gates). As the kubelet does, a pod whose gates are not all True is not
  Ready, whatever the remote says.
* ``Ready``, ``ContainersReady``, ``Initialized``,
  ``PodReadyToStartContainers`` and the resize conditions
  (``PodResizePending``, ``PodResizeInProgress``) are the kubelet's: always
  the remote's, and dropped locally when the remote has none (so a stale
  error from ``pending_status_for_error``, or a resize the remote has since
  done, does not outlive its cause).
* Any other local condition type (set by local controllers) is kept.

``observedGeneration`` is dropped: the remote's generation counts remote
updates, which is not what the local field claims to report.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ak.core.codec import clone
from ak.core.conditions import find_condition, set_condition
from ak.core.resize import RESIZE_CONDITIONS
from ak.core.timefmt import format_time
from ak.core.types import Obj

_COPIED_FROM_REMOTE = (
    "phase",
    "conditions",
    "containerStatuses",
    "initContainerStatuses",
    "ephemeralContainerStatuses",
    "podIP",
    "podIPs",
    "hostIP",
    "hostIPs",
    "startTime",
    "reason",
    "message",
    # The pod-level resources the kubelet applied and allocated (the pod-level
    # analogues of containerStatuses[].resources/allocatedResources).
    "resources",
    "allocatedResources",
)
LOCAL_CONDITIONS = frozenset({"PodScheduled", "DisruptionTarget"})
KUBELET_CONDITIONS = (
    frozenset({"Ready", "ContainersReady", "Initialized", "PodReadyToStartContainers"})
    | RESIZE_CONDITIONS
)
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

REASON_REMOTE_POD_MISSING = "RemotePodMissing"
MESSAGE_REMOTE_POD_MISSING = (
    "the pod running this pod on the remote cluster no longer exists (deleted or evicted there)"
)
REASON_CONTAINER_UNKNOWN = "ContainerStatusUnknown"
REASON_GATES_NOT_READY = "ReadinessGatesNotReady"
EXIT_CODE_UNKNOWN = 137  # what the kubelet reports for containers it lost track of
REASON_START_ERROR = "StartError"
EXIT_CODE_NOT_STARTED = 128  # what the kubelet reports for a container the runtime could not start


def _gate_types(local: Obj) -> list[str]:
    gates = (local.get("spec") or {}).get("readinessGates") or []
    return [g["conditionType"] for g in gates if g.get("conditionType")]


def _from_remote(condition: Obj) -> Obj:
    result = clone(condition)
    result.pop("observedGeneration", None)
    return result


def _merge_conditions(remote: list[Obj], local: list[Obj], gates: list[str]) -> list[Obj]:
    local_by_type = {c.get("type"): c for c in local}
    kept_local = LOCAL_CONDITIONS | set(gates)
    merged: list[Obj] = []
    for condition in remote:
        type_ = condition.get("type")
        if type_ in kept_local and type_ in local_by_type:
            merged.append(clone(local_by_type[type_]))
        elif type_ not in gates:
            merged.append(_from_remote(condition))
    present = {c.get("type") for c in merged}
    for condition in local:
        type_ = condition.get("type")
        if type_ not in present and type_ not in KUBELET_CONDITIONS:
            merged.append(clone(condition))
    return merged


def _gate_problems(conditions: list[Obj], gates: list[str]) -> list[str]:
    problems = []
    for gate in gates:
        condition = find_condition(conditions, gate)
        if condition is None:
            problems.append(
                f'corresponding condition of pod readiness gate "{gate}" does not exist.'
            )
        elif condition.get("status") != "True":
            problems.append(
                f'the status of pod readiness gate "{gate}" is not "True", '
                f"but {condition.get('status')}"
            )
    return problems


def _apply_gates(conditions: list[Obj], gates: list[str], local: list[Obj]) -> None:
    ready = find_condition(conditions, "Ready")
    if ready is None or ready.get("status") != "True":
        return
    problems = _gate_problems(conditions, gates)
    if not problems:
        return
    previous = find_condition(local, "Ready")
    if previous is not None and previous.get("status") == "False":
        ready["lastTransitionTime"] = previous.get("lastTransitionTime")
    ready.update(status="False", reason=REASON_GATES_NOT_READY, message=", ".join(problems))


def local_status(remote: Obj, local: Obj) -> Obj:
    """The status to write to the local pod for the remote pod's status.

    Starts from the local status so fields only local controllers set
    (nominatedNodeName, resourceClaimStatuses...) survive. A local pod in a
    terminal phase is returned unchanged: the API server refuses to leave
    one, and a Failed verdict (e.g. remote pod missing) must stand.
    """
    remote_status: dict[str, Any] = remote.get("status") or {}
    old: dict[str, Any] = local.get("status") or {}
    status = clone(old)
    if old.get("phase") in TERMINAL_PHASES:
        return status
    status.pop("observedGeneration", None)
    for field in _COPIED_FROM_REMOTE:
        status.pop(field, None)
        if field in remote_status:
            status[field] = clone(remote_status[field])
    refused = _never_started_ephemeral(old, remote_status)
    if refused:
        status["ephemeralContainerStatuses"] = [
            *(status.get("ephemeralContainerStatuses") or []),
            *refused,
        ]
    # The API server defaults phase on create, so only a hand-made remote
    # object lacks one; never write a phase-less status.
    status.setdefault("phase", old.get("phase", "Pending"))
    if "qosClass" not in old and "qosClass" in remote_status:
        status["qosClass"] = remote_status["qosClass"]
    gates = _gate_types(local)
    conditions = _merge_conditions(
        remote_status.get("conditions") or [], old.get("conditions") or [], gates
    )
    if gates:
        _apply_gates(conditions, gates, old.get("conditions") or [])
    if conditions:
        status["conditions"] = conditions
    return status


def _never_started_ephemeral(old: Obj, remote_status: Obj) -> list[Obj]:
    """The local pod's terminated ephemeral container statuses the remote has
    no entry for: AK's verdict on containers the remote refused
    (``with_refused_ephemeral``), which stands as a kubelet's would."""
    theirs = {e.get("name") for e in remote_status.get("ephemeralContainerStatuses") or []}
    return [
        clone(e)
        for e in old.get("ephemeralContainerStatuses") or []
        if e.get("name") not in theirs and "terminated" in (e.get("state") or {})
    ]


_LIST_KEYS = {
    "conditions": "type",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "ephemeralContainerStatuses": "name",
}


def _normalised(status: Obj) -> Obj:
    # podIPs/hostIPs are NOT sorted: their first entry is the primary IP.
    result: Obj = {}
    for key, value in status.items():
        if value is None or value in ([], {}):
            continue
        if key in _LIST_KEYS and isinstance(value, list):
            sort_key = _LIST_KEYS[key]
            result[key] = sorted(value, key=lambda e: str(e.get(sort_key, "")))
        else:
            result[key] = value
    return result


def status_patch(old: Obj, new: Obj) -> Obj:
    """A merge patch for the status fields AK mirrors; one AK no longer sets is cleared
    (a merge patch leaves out-of-patch fields alone, so absence must be explicit)."""
    patch: Obj = {k: new[k] for k in _COPIED_FROM_REMOTE if k in new and new[k] != old.get(k)}
    patch.update({k: None for k in _COPIED_FROM_REMOTE if k in old and k not in new})
    return patch


_STARTING = frozenset({"ContainerCreating", "PodInitializing"})


def is_plain_pending(status: Obj) -> bool:
    """Whether ``status`` says no more than "Pending, starting as usual": no
    container has run or failed to start, the pod is not unschedulable, there is
    no pod-level reason. Most pods leave this state within a second, so the pod
    controller holds such a status back briefly and writes the next one instead."""
    if status.get("phase") != "Pending" or status.get("reason") or status.get("message"):
        return False
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") != "True":
            return False
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        waiting = state.get("waiting")
        if set(state) - {"waiting"} or cs.get("lastState"):
            return False
        if waiting is not None and (waiting.get("reason") or "ContainerCreating") not in _STARTING:
            return False
    return True


def status_changed(new_status: Obj, old_status: Obj) -> bool:
    """Whether writing ``new_status`` would change anything that matters:
    list order of keyed lists and empty-vs-absent fields do not."""
    return _normalised(new_status) != _normalised(old_status)


def _find_status(statuses: list[Obj], name: str) -> Obj | None:
    return next((s for s in statuses if s.get("name") == name), None)


def _blank_status(container: Obj) -> Obj:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "restartCount": 0,
        "ready": False,
        "started": False,
        "state": {},
    }


def _terminated(container: Obj, existing: Obj | None, now: str) -> Obj:
    entry = clone(existing) if existing else _blank_status(container)
    state = entry.get("state") or {}
    if "terminated" not in state:
        terminated: Obj = {
            "exitCode": EXIT_CODE_UNKNOWN,
            "reason": REASON_CONTAINER_UNKNOWN,
            "message": MESSAGE_REMOTE_POD_MISSING,
            "finishedAt": now,
        }
        started_at = (state.get("running") or {}).get("startedAt")
        if started_at:
            terminated["startedAt"] = started_at
        if entry.get("containerID"):
            terminated["containerID"] = entry["containerID"]
        entry["state"] = {"terminated": terminated}
    entry.update(ready=False, started=False)
    return entry


def _waiting(container: Obj, existing: Obj | None, reason: str, message: str) -> Obj:
    entry = clone(existing) if existing else _blank_status(container)
    entry["state"] = {"waiting": {"reason": reason, "message": message}}
    entry.update(ready=False, started=False)
    return entry


def _not_ready(conditions: list[Obj], reason: str, message: str, now: str) -> list[Obj]:
    for type_ in ("Ready", "ContainersReady"):
        condition = {"type": type_, "status": "False", "reason": reason, "message": message}
        conditions = set_condition(conditions, condition, now)
    return conditions


_STATUS_LISTS = (("initContainerStatuses", "initContainers"), ("containerStatuses", "containers"))


def failed_status_for_missing_remote(local: Obj, now: datetime) -> Obj:
    """Status for a live local pod whose remote pod is gone.

    Failing the pod (instead of silently re-creating it) is what a node does
    when a pod's containers vanish: its controller replaces it, and the
    user sees why. A pod already Succeeded/Failed is returned unchanged: the
    API server refuses to leave a terminal phase.
    """
    status = clone(local.get("status") or {})
    if status.get("phase") in TERMINAL_PHASES:
        return status
    ts = format_time(now)
    spec: dict[str, Any] = local.get("spec") or {}
    status.update(
        phase="Failed", reason=REASON_REMOTE_POD_MISSING, message=MESSAGE_REMOTE_POD_MISSING
    )
    for status_field, spec_field in _STATUS_LISTS:
        containers = spec.get(spec_field) or []
        if containers:
            old = status.get(status_field) or []
            status[status_field] = [
                _terminated(c, _find_status(old, c["name"]), ts) for c in containers
            ]
    status["conditions"] = _not_ready(
        status.get("conditions") or [], REASON_REMOTE_POD_MISSING, MESSAGE_REMOTE_POD_MISSING, ts
    )
    return status


def pending_status_for_error(local: Obj, reason: str, message: str, now: datetime) -> Obj:
    """Status for a pod AK cannot (yet) create remotely.

    The pod stays Pending and scheduled (PodScheduled untouched: it IS bound
    to the virtual node). ``status.reason``/``message`` show up in ``kubectl
    describe``; containers wait with the same reason because kubectl's
    STATUS column prefers a container's waiting reason over the pod's.
    Ready/ContainersReady are False with the reason, for tools that read
    conditions. Terminal pods are returned unchanged.
    """
    status = clone(local.get("status") or {})
    if status.get("phase") in TERMINAL_PHASES:
        return status
    ts = format_time(now)
    spec: dict[str, Any] = local.get("spec") or {}
    status.update(phase="Pending", reason=reason, message=message)
    for status_field, spec_field in _STATUS_LISTS:
        containers = spec.get(spec_field) or []
        if containers:
            old = status.get(status_field) or []
            status[status_field] = [
                _waiting(c, _find_status(old, c["name"]), reason, message) for c in containers
            ]
    status["conditions"] = _not_ready(status.get("conditions") or [], reason, message, ts)
    return status


def with_refused_ephemeral(
    status: Obj, local: Obj, refused: Mapping[str, str], now: datetime
) -> Obj:
    """``status`` with a terminated entry for each of the local pod's ephemeral
    containers the remote refused (``refused``: name -> the remote's message).

    A kubelet that cannot start a container says so in its status, and
    everything that waits on one (``kubectl debug``, ``kubectl wait``,
    ``kubectl attach``) ends on that. An ephemeral container is never
    restarted, so a refused one has terminated for good: ``StartError``, exit
    code 128, as for one the runtime could not start, and the remote's
    message. An entry the status already has (the remote's, or AK's earlier
    verdict) stands.
    """
    wanted = (local.get("spec") or {}).get("ephemeralContainers") or []
    have = {e.get("name") for e in status.get("ephemeralContainerStatuses") or []}
    added: list[Obj] = []
    ts = format_time(now)
    for container in wanted:
        name = container.get("name")
        if name not in refused or name in have:
            continue
        entry = _blank_status(container)
        entry["state"] = {
            "terminated": {
                "exitCode": EXIT_CODE_NOT_STARTED,
                "reason": REASON_START_ERROR,
                "message": refused[name],
                "finishedAt": ts,
            }
        }
        added.append(entry)
    if not added:
        return status
    result = dict(status)
    result["ephemeralContainerStatuses"] = [
        *(status.get("ephemeralContainerStatuses") or []),
        *added,
    ]
    return result
