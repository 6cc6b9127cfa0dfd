import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from ak.core.conditions import find_condition
from ak.core.pods import new_ephemeral_containers
from ak.core.status import (
    failed_status_for_missing_remote,
    is_plain_pending,
    local_status,
    pending_status_for_error,
    status_changed,
    with_refused_ephemeral,
)
from ak.core.types import Obj
from tests.unit.fixtures import deployment_pod, remote_running_status

NOW = datetime(2026, 11, 22, 2, 11, 44, 123456, tzinfo=UTC)
NOW_S = "2026-11-22T02:11:44Z"
LOCAL_SCHEDULED = {
    "type": "PodScheduled",
    "status": "True",
    "lastProbeTime": None,
    "lastTransitionTime": "2026-11-22T01:00:01Z",
}


def remote_pod(status: Obj | None = None) -> Obj:
    return {"metadata": {"name": "x"}, "status": status or remote_running_status()}


def condition(status: Obj, type_: str) -> Obj:
    found = find_condition(status["conditions"], type_)
    assert found is not None, f"no {type_} condition"
    return found


def test_running_remote_status_round_trip() -> None:
    status = local_status(remote_pod(), deployment_pod())
    remote = remote_running_status()
    for field in ("phase", "podIP", "podIPs", "hostIP", "hostIPs", "startTime"):
        assert status[field] == remote[field]
    assert status["containerStatuses"] == remote["containerStatuses"]
    assert status["qosClass"] == "Burstable"
    assert "observedGeneration" not in status
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert condition(status, "PodScheduled") == LOCAL_SCHEDULED
    assert "observedGeneration" not in condition(status, "Ready")


def test_local_pod_scheduled_survives_unschedulable_remote() -> None:
    remote = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available",
            }
        ],
    }
    status = local_status(remote_pod(remote), deployment_pod())
    assert status["conditions"] == [LOCAL_SCHEDULED]
    assert status["phase"] == "Pending"


def test_remote_pod_scheduled_used_when_local_has_none() -> None:
    local = deployment_pod()
    local["status"]["conditions"] = []
    status = local_status(remote_pod(), local)
    assert condition(status, "PodScheduled")["lastTransitionTime"] == "2026-11-22T01:00:02Z"


def test_local_only_conditions_kept_and_disruption_target_local_wins() -> None:
    local = deployment_pod()
    local["status"]["conditions"] += [
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"},
        {"type": "example.com/custom", "status": "True"},
    ]
    remote = remote_running_status()
    remote["conditions"].append(
        {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}
    )
    status = local_status(remote_pod(remote), local)
    assert condition(status, "DisruptionTarget")["reason"] == "EvictionByEvictionAPI"
    assert condition(status, "example.com/custom")["status"] == "True"
    assert len(status["conditions"]) == 7


def test_stale_local_kubelet_conditions_dropped_when_remote_has_none() -> None:
    local = deployment_pod()
    local["status"] = pending_status_for_error(local, "RemoteError", "boom", NOW)
    status = local_status(remote_pod({"phase": "Pending"}), local)
    assert [c["type"] for c in status["conditions"]] == ["PodScheduled"]
    assert "reason" not in status and "message" not in status
    assert "containerStatuses" not in status


def test_local_only_status_fields_kept_and_local_qos_wins() -> None:
    local = deployment_pod()
    local["status"]["nominatedNodeName"] = "n1"
    local["status"]["qosClass"] = "Guaranteed"
    status = local_status(remote_pod(), local)
    assert status["nominatedNodeName"] == "n1"
    assert status["qosClass"] == "Guaranteed"


def test_remote_qos_used_when_local_has_none() -> None:
    local = deployment_pod()
    del local["status"]["qosClass"]
    assert local_status(remote_pod(), local)["qosClass"] == "Burstable"


def test_terminal_local_status_is_final() -> None:
    local = deployment_pod()
    local["status"] = failed_status_for_missing_remote(local, NOW)
    assert local_status(remote_pod(), local) == local["status"]


def test_phase_never_missing() -> None:
    assert local_status(remote_pod({"podIP": "1.2.3.4"}), deployment_pod())["phase"] == "Pending"


def test_remote_ips_removed_when_remote_lost_them() -> None:
    local = deployment_pod()
    local["status"] = local_status(remote_pod(), local)
    remote = remote_running_status()
    for field in ("podIP", "podIPs"):
        del remote[field]
    status = local_status(remote_pod(remote), local)
    assert "podIP" not in status and "podIPs" not in status


def with_gate(gate_status: str | None) -> Obj:
    local = deployment_pod()
    local["spec"]["readinessGates"] = [{"conditionType": "example.com/lb-ready"}]
    if gate_status is not None:
        local["status"]["conditions"].append(
            {"type": "example.com/lb-ready", "status": gate_status}
        )
    return local


def test_readiness_gate_missing_makes_pod_not_ready() -> None:
    status = local_status(remote_pod(), with_gate(None))
    ready = condition(status, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "ReadinessGatesNotReady"
    assert ready["message"] == (
        'corresponding condition of pod readiness gate "example.com/lb-ready" does not exist.'
    )
    assert condition(status, "ContainersReady")["status"] == "True"


def test_readiness_gate_false_makes_pod_not_ready() -> None:
    status = local_status(remote_pod(), with_gate("False"))
    ready = condition(status, "Ready")
    assert ready["status"] == "False"
    assert ready["message"] == (
        'the status of pod readiness gate "example.com/lb-ready" is not "True", but False'
    )
    assert condition(status, "example.com/lb-ready")["status"] == "False"


def test_readiness_gate_true_keeps_remote_ready() -> None:
    status = local_status(remote_pod(), with_gate("True"))
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "example.com/lb-ready")["status"] == "True"


def test_readiness_gate_not_ready_keeps_previous_transition_time() -> None:
    local = with_gate("False")
    local["status"]["conditions"].append(
        {"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-22T00:00:00Z"}
    )
    ready = condition(local_status(remote_pod(), local), "Ready")
    assert ready["lastTransitionTime"] == "2026-11-22T00:00:00Z"


def test_local_status_does_not_mutate_inputs() -> None:
    local, remote = deployment_pod(), remote_pod()
    before = copy.deepcopy((local, remote))
    status = local_status(remote, local)
    status["containerStatuses"][0]["ready"] = False
    assert (local, remote) == before


# --- status_changed ----------------------------------------------------------


def test_status_changed_ignores_condition_order_and_empties() -> None:
    old = local_status(remote_pod(), deployment_pod())
    new = copy.deepcopy(old)
    new["conditions"].reverse()
    new["initContainerStatuses"] = []
    new["message"] = None
    assert not status_changed(new, old)


def test_status_changed_detects_real_changes() -> None:
    old = local_status(remote_pod(), deployment_pod())
    new = copy.deepcopy(old)
    new["containerStatuses"][0]["restartCount"] = 1
    assert status_changed(new, old)
    new = copy.deepcopy(old)
    condition(new, "Ready")["status"] = "False"
    assert status_changed(new, old)


def test_status_changed_keeps_pod_ip_order() -> None:
    old = {"podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}
    new = {"podIPs": [{"ip": "fd00::1"}, {"ip": "10.0.0.1"}]}
    assert status_changed(new, old)


# --- failed_status_for_missing_remote ---------------------------------------


def running_local() -> Obj:
    local = deployment_pod()
    local["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    local["status"] = local_status(remote_pod(), local)
    local["status"]["initContainerStatuses"] = [
        {
            "name": "init",
            "image": "busybox",
            "imageID": "x",
            "ready": True,
            "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
        }
    ]
    return local


def test_missing_remote_fails_pod() -> None:
    status = failed_status_for_missing_remote(running_local(), NOW)
    assert status["phase"] == "Failed"
    assert status["reason"] == "RemotePodMissing"
    assert "remote cluster" in status["message"]
    [container] = status["containerStatuses"]
    assert container["ready"] is False and container["started"] is False
    assert container["state"] == {
        "terminated": {
            "exitCode": 137,
            "reason": "ContainerStatusUnknown",
            "message": status["message"],
            "finishedAt": NOW_S,
            "startedAt": "2026-11-22T01:00:08Z",
            "containerID": "containerd://0123abcd",
        }
    }
    [init] = status["initContainerStatuses"]
    assert init["state"] == {"terminated": {"exitCode": 0, "reason": "Completed"}}
    ready = condition(status, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "RemotePodMissing"
    assert ready["lastTransitionTime"] == NOW_S
    assert condition(status, "ContainersReady")["status"] == "False"
    assert condition(status, "PodScheduled") == LOCAL_SCHEDULED


def test_missing_remote_for_never_started_pod_creates_statuses() -> None:
    status = failed_status_for_missing_remote(deployment_pod(), NOW)
    [container] = status["containerStatuses"]
    assert container["name"] == "crossplane"
    assert container["image"] == "crossplane/crossplane:v0.13.0"
    assert container["restartCount"] == 0
    assert container["state"]["terminated"]["finishedAt"] == NOW_S
    assert "startedAt" not in container["state"]["terminated"]
    assert "initContainerStatuses" not in status


def test_missing_remote_keeps_terminal_pod() -> None:
    local = deployment_pod()
    local["status"]["phase"] = "Succeeded"
    assert failed_status_for_missing_remote(local, NOW) == local["status"]


# --- pending_status_for_error -----------------------------------------------


def test_pending_status_for_error() -> None:
    local = deployment_pod()
    local["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    status = pending_status_for_error(local, "UnsupportedVolume", "no hostPath", NOW)
    assert status["phase"] == "Pending"
    assert status["reason"] == "UnsupportedVolume"
    assert status["message"] == "no hostPath"
    assert condition(status, "PodScheduled") == LOCAL_SCHEDULED
    for type_ in ("Ready", "ContainersReady"):
        assert condition(status, type_) == {
            "type": type_,
            "status": "False",
            "reason": "UnsupportedVolume",
            "message": "no hostPath",
            "lastTransitionTime": NOW_S,
        }
    for field in ("containerStatuses", "initContainerStatuses"):
        [entry] = status[field]
        assert entry["state"] == {
            "waiting": {"reason": "UnsupportedVolume", "message": "no hostPath"}
        }
        assert entry["ready"] is False
    assert status["qosClass"] == "Burstable"


def test_pending_status_repeated_keeps_transition_time() -> None:
    local = deployment_pod()
    local["status"] = pending_status_for_error(local, "R", "m", NOW)
    later = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)
    status = pending_status_for_error(local, "R2", "m2", later)
    ready = condition(status, "Ready")
    assert ready["lastTransitionTime"] == NOW_S
    assert ready["reason"] == "R2"
    assert not status_changed(pending_status_for_error(local, "R", "m", later), local["status"])


def test_pending_status_keeps_restart_count() -> None:
    local = running_local()
    local["status"]["containerStatuses"][0]["restartCount"] = 3
    status = pending_status_for_error(local, "R", "m", NOW)
    assert status["containerStatuses"][0]["restartCount"] == 3


def test_pending_status_keeps_terminal_pod() -> None:
    local = deployment_pod()
    local["status"]["phase"] = "Failed"
    assert pending_status_for_error(local, "R", "m", NOW) == local["status"]


def test_status_patch_sets_changes_and_clears_dropped_fields() -> None:
    from ak.core.status import status_patch

    old = {"phase": "Pending", "reason": "NoSecret", "message": "m", "qosClass": "Burstable"}
    new = {"phase": "Running", "podIP": "10.0.0.1", "qosClass": "Burstable"}
    assert status_patch(old, new) == {
        "phase": "Running",
        "podIP": "10.0.0.1",
        "reason": None,
        "message": None,
    }


def test_ephemeral_container_statuses_flow_back() -> None:
    # `kubectl debug -it` waits for this status before it attaches.
    running = {"name": "dbg", "state": {"running": {"startedAt": NOW_S}}, "ready": False}
    remote = remote_running_status()
    remote["ephemeralContainerStatuses"] = [running]
    status = local_status(remote_pod(remote), deployment_pod())
    assert status["ephemeralContainerStatuses"] == [running]


@pytest.mark.parametrize(
    ("status", "plain"),
    [
        ({"phase": "Pending"}, True),
        (
            {
                "phase": "Pending",
                "hostIP": "10.1.0.1",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                ],
            },
            True,
        ),
        (
            {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "c",
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                        "lastState": {},
                    }
                ],
            },
            True,
        ),
        (
            {
                "phase": "Pending",
                "initContainerStatuses": [
                    {"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}
                ],
            },
            True,
        ),
        ({"phase": "Running"}, False),
        (
            {
                "phase": "Pending",
                "containerStatuses": [
                    {"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
                ],
            },
            False,
        ),
        (
            {
                "phase": "Pending",
                "initContainerStatuses": [{"name": "i", "state": {"running": {}}}],
            },
            False,
        ),
        (
            {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "c",
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                        "lastState": {"terminated": {"exitCode": 1}},
                    }
                ],
            },
            False,
        ),
        (
            {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
                ],
            },
            False,
        ),
        ({"phase": "Pending", "reason": "SchedulingGated"}, False),
    ],
)
def test_plain_pending(status: dict[str, Any], plain: bool) -> None:
    assert is_plain_pending(status) is plain


# --- ephemeral containers the remote refused ----------------------------------


def debugged_pod() -> Obj:
    local = deployment_pod()
    local["spec"]["ephemeralContainers"] = [
        {"name": "ok", "image": "busybox:1", "targetContainerName": "crossplane"},
        {"name": "ptrace", "image": "busybox:1", "targetContainerName": "crossplane"},
    ]
    return local


REFUSAL = (
    "remote cluster refused ephemeral container 'ptrace': pods \"x\" is forbidden: "
    'violates PodSecurity "baseline:latest": non-default capabilities'
)


def test_refused_ephemeral_container_is_terminated_with_the_remotes_message() -> None:
    local = debugged_pod()
    remote_status = remote_running_status()
    running_ok = {"name": "ok", "state": {"running": {"startedAt": NOW_S}}, "ready": False}
    remote_status["ephemeralContainerStatuses"] = [running_ok]
    status = local_status(remote_pod(remote_status), local)
    status = with_refused_ephemeral(status, local, {"ptrace": REFUSAL}, NOW)
    by_name = {e["name"]: e for e in status["ephemeralContainerStatuses"]}
    assert by_name["ok"] == running_ok  # the remote's, untouched
    refused = by_name["ptrace"]
    assert refused["state"] == {
        "terminated": {
            "exitCode": 128,
            "reason": "StartError",
            "message": REFUSAL,
            "finishedAt": NOW_S,
        }
    }
    assert (refused["image"], refused["ready"], refused["restartCount"]) == ("busybox:1", False, 0)
    assert "containerID" not in refused


def test_refused_ephemeral_verdict_stands_without_the_memory_of_it() -> None:
    """After a restart AK no longer remembers the refusal: the local status keeps
    its verdict (the remote has no entry), and the container is not asked for again."""
    local = debugged_pod()
    status = with_refused_ephemeral(
        local_status(remote_pod(), local), local, {"ptrace": REFUSAL}, NOW
    )
    local["status"] = status
    again = local_status(remote_pod(), local)
    assert not status_changed(again, status)
    assert [e["name"] for e in again["ephemeralContainerStatuses"]] == ["ptrace"]
    # Nor does a later refusal of the same one write a new time.
    later = with_refused_ephemeral(again, local, {"ptrace": "other"}, NOW.replace(hour=5))
    assert later == again
    remote = {"spec": {"ephemeralContainers": [{"name": "ok", "image": "busybox:1"}]}}
    assert new_ephemeral_containers(local, remote, []) == []


def test_no_refusals_leave_the_status_alone() -> None:
    local = debugged_pod()
    status = local_status(remote_pod(), local)
    assert with_refused_ephemeral(status, local, {}, NOW) is status
    assert "ephemeralContainerStatuses" not in status


def test_remote_disruption_target_shown_when_local_has_none() -> None:
    # A remote drain's eviction marks the twin; the tenant sees it on its pod.
    remote = remote_running_status()
    remote["conditions"].append(
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    )
    status = local_status(remote_pod(remote), deployment_pod())
    assert condition(status, "DisruptionTarget")["reason"] == "EvictionByEvictionAPI"
