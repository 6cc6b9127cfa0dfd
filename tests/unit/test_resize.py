"""In-place resize: what AK sends to the twin, and what the local status says."""

import copy
from datetime import UTC, datetime, timedelta

from ak.core.conditions import find_condition
from ak.core.resize import (
    patch_key,
    resize_patch,
    resize_problem,
    with_refused_resize,
)
from ak.core.status import local_status, status_changed
from ak.core.types import Obj
from tests.unit.fixtures import deployment_pod, remote_running_status

NOW = datetime(2026, 12, 7, 9, 0, 0, tzinfo=UTC)


def pod(cpu: str = "200m", memory: str = "64Mi") -> Obj:
    local = deployment_pod()
    local["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu},
    }
    return local


def twin_of(local: Obj) -> Obj:
    """The twin as the remote has it: the same resources, plus what its
    LimitRange added (a memory limit the local pod does not set)."""
    remote = {"metadata": {"name": "x"}, "spec": copy.deepcopy(local["spec"])}
    remote["spec"]["containers"][0]["resources"]["limits"]["memory"] = "1Gi"
    remote["status"] = remote_running_status()
    return remote


def test_no_resize_while_the_twin_has_the_local_resources() -> None:
    local = pod()
    assert resize_patch(local, twin_of(local)) is None


def test_changed_cpu_is_sent_key_by_key() -> None:
    remote = twin_of(pod())
    local = pod(cpu="300m")
    patch = resize_patch(local, remote)
    # Only what differs: the remote's own memory limit and the memory request stay.
    assert patch == {
        "spec": {
            "containers": [
                {
                    "name": "crossplane",
                    "resources": {"requests": {"cpu": "300m"}, "limits": {"cpu": "300m"}},
                }
            ]
        }
    }


def test_quantities_compare_by_value() -> None:
    remote = twin_of(pod(cpu="0.3", memory="67108864"))
    assert resize_patch(pod(cpu="300m", memory="64Mi"), remote) is None


def test_only_cpu_and_memory_are_resized() -> None:
    local = pod()
    remote = twin_of(local)
    local["spec"]["containers"][0]["resources"]["requests"]["ephemeral-storage"] = "1Gi"
    assert resize_patch(local, remote) is None


def test_removed_values_and_unknown_containers_send_nothing() -> None:
    remote = twin_of(pod())
    local = pod()
    del local["spec"]["containers"][0]["resources"]["limits"]
    local["spec"]["containers"].append({"name": "new", "resources": {"requests": {"cpu": "1"}}})
    assert resize_patch(local, remote) is None


def test_init_containers_are_resized_too() -> None:
    local = pod()
    sidecar = {
        "name": "side",
        "restartPolicy": "Always",
        "resources": {"requests": {"memory": "32Mi"}},
    }
    local["spec"]["initContainers"] = [sidecar]
    remote = twin_of(local)
    local["spec"]["initContainers"][0]["resources"]["requests"]["memory"] = "48Mi"
    assert resize_patch(local, remote) == {
        "spec": {
            "initContainers": [{"name": "side", "resources": {"requests": {"memory": "48Mi"}}}]
        }
    }


def test_pod_level_resources_are_resized_too() -> None:
    """spec.resources of the pod as a whole (InPlacePodLevelResourcesVerticalScaling,
    on in 1.36) is sent as the containers' are, and the kubelet's pod-level
    status comes back."""
    local = pod()
    local["spec"]["resources"] = {"requests": {"cpu": "200m"}, "limits": {"cpu": "400m"}}
    remote = twin_of(local)
    assert resize_patch(local, remote) is None
    local["spec"]["resources"] = {"requests": {"cpu": "300m"}, "limits": {"cpu": "0.4"}}
    assert resize_patch(local, remote) == {"spec": {"resources": {"requests": {"cpu": "300m"}}}}
    # Pod-level resources added by the resize (the API server allows it).
    del remote["spec"]["resources"]
    assert resize_patch(local, remote) == {"spec": {"resources": local["spec"]["resources"]}}

    remote["status"]["resources"] = {"requests": {"cpu": "300m"}, "limits": {"cpu": "400m"}}
    remote["status"]["allocatedResources"] = {"cpu": "300m"}
    status = local_status(remote, local)
    assert status["resources"] == remote["status"]["resources"]
    assert status["allocatedResources"] == {"cpu": "300m"}


def test_patch_key_is_stable() -> None:
    a = {"spec": {"containers": [{"resources": {"limits": {"cpu": "1"}}, "name": "c"}]}}
    b = {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}}}]}}
    assert patch_key(a) == patch_key(b)
    assert patch_key(a) != patch_key({"spec": {"containers": [{"name": "c"}]}})


def test_refused_resize_is_infeasible_and_keeps_its_time() -> None:
    local = pod(cpu="50")
    status = local_status(twin_of(pod()), local)
    message = "remote cluster refused the resize: pods is forbidden: Node didn't have enough"
    first = with_refused_resize(status, local["status"], message, NOW)
    pending = find_condition(first["conditions"], "PodResizePending")
    assert pending is not None
    assert (pending["status"], pending["reason"], pending["message"]) == (
        "True",
        "Infeasible",
        message,
    )
    assert pending["lastTransitionTime"] == "2026-12-07T09:00:00Z"
    # Written, then computed again later: the same condition, nothing to write.
    local["status"] = first
    later = local_status(twin_of(pod()), local)
    assert find_condition(later["conditions"], "PodResizePending") is None  # the remote has none
    again = with_refused_resize(later, local["status"], message, NOW + timedelta(minutes=1))
    assert not status_changed(again, first)


def test_remote_resize_conditions_are_the_kubelets() -> None:
    """The remote's PodResizePending comes through; once the remote kubelet has
    done the resize (no condition), the local one goes too."""
    local = pod(cpu="300m")
    remote = twin_of(local)
    deferred = {
        "type": "PodResizePending",
        "status": "True",
        "reason": "Deferred",
        "message": "Node didn't have enough resource: cpu",
        "observedGeneration": 2,
        "lastProbeTime": None,
        "lastTransitionTime": "2026-12-07T08:59:00Z",
    }
    remote["status"]["conditions"].append(deferred)
    remote["status"]["containerStatuses"][0]["resources"] = {"limits": {"cpu": "200m"}}
    remote["status"]["containerStatuses"][0]["allocatedResources"] = {"cpu": "200m"}
    local["status"] = local_status(remote, local)
    got = find_condition(local["status"]["conditions"], "PodResizePending")
    assert got is not None and got["reason"] == "Deferred" and got["message"] == deferred["message"]
    assert local["status"]["containerStatuses"][0]["allocatedResources"] == {"cpu": "200m"}
    assert resize_problem(remote) == ("Deferred", deferred["message"])

    remote["status"]["conditions"].remove(deferred)
    remote["status"]["containerStatuses"][0]["resources"] = {"limits": {"cpu": "300m"}}
    done = local_status(remote, local)
    assert find_condition(done["conditions"], "PodResizePending") is None
    assert done["containerStatuses"][0]["resources"] == {"limits": {"cpu": "300m"}}
    assert resize_problem(remote) is None


def test_resize_problem_in_progress_error() -> None:
    status = {
        "conditions": [
            {"type": "PodResizeInProgress", "status": "True"},
        ]
    }
    assert resize_problem({"status": status}) is None
    status["conditions"][0].update(reason="Error", message="runc: update failed")
    assert resize_problem({"status": status}) == ("Error", "runc: update failed")
