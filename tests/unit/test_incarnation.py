"""Which local pod a remote pod runs for (``ak/core/incarnation.py``)."""

import json

from ak.core.incarnation import Incarnation, adoption_patch, incarnation
from ak.core.labels import ANNOTATION_LOCAL_UID, ANNOTATION_PROPAGATED_KEYS, LABEL_MANAGED_BY
from ak.core.pods import remote_pod_patch, to_remote_pod
from ak.core.types import Obj
from tests.unit.fixtures import NODE, POD_UID, REMOTE_NAMESPACE, deployment_pod


def made_by_ak(local: Obj) -> Obj:
    remote = to_remote_pod(local, node_name=NODE, remote_namespace=REMOTE_NAMESPACE, extra_env=[])
    remote["metadata"]["creationTimestamp"] = "2026-12-04T10:00:05Z"
    return remote


def made_by_original_ak(local: Obj) -> Obj:
    """The shape negz/actual-kubelets wrote: every local label and annotation,
    its two labels, the service-account annotation; no UID record."""
    meta = local["metadata"]
    return {
        "metadata": {
            "name": meta["name"],
            "namespace": REMOTE_NAMESPACE,
            "uid": "remote-uid",
            "creationTimestamp": "2026-12-04T10:00:05Z",
            "labels": {
                **meta.get("labels", {}),
                "actual.vk/node-name": NODE,
                "actual.vk/namespace": meta["namespace"],
            },
            "annotations": {
                **meta.get("annotations", {}),
                "actual.vk/replicated-service-account.name": "default",
            },
        },
        "spec": {"containers": local["spec"]["containers"]},
    }


def local_pod() -> Obj:
    local = deployment_pod()
    local["metadata"]["creationTimestamp"] = "2026-12-04T10:00:00Z"
    return local


def test_recorded_uid_decides() -> None:
    local = local_pod()
    remote = made_by_ak(local)
    assert incarnation(local, remote) is Incarnation.SAME
    local["metadata"]["uid"] = "a-new-pod-of-the-same-name"
    assert incarnation(local, remote) is Incarnation.OTHER


def test_a_recorded_uid_wins_over_timestamps() -> None:
    local = local_pod()
    remote = made_by_ak(local)
    remote["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    assert incarnation(local, remote) is Incarnation.SAME


def test_the_original_aks_pod_is_adopted() -> None:
    local = local_pod()
    assert incarnation(local, made_by_original_ak(local)) is Incarnation.LEGACY


def test_an_unrecorded_pod_older_than_the_local_pod_is_an_earlier_pods() -> None:
    local = local_pod()
    remote = made_by_original_ak(local)
    remote["metadata"]["creationTimestamp"] = "2026-12-04T09:50:00Z"
    assert incarnation(local, remote) is Incarnation.OTHER


def test_clock_skew_between_clusters_is_tolerated() -> None:
    local = local_pod()
    remote = made_by_original_ak(local)
    remote["metadata"]["creationTimestamp"] = "2026-12-04T09:59:00Z"  # 1 min "before"
    assert incarnation(local, remote) is Incarnation.LEGACY


def test_an_unrecorded_pod_being_deleted_is_not_adopted() -> None:
    local = local_pod()
    remote = made_by_original_ak(local)
    remote["metadata"]["deletionTimestamp"] = "2026-12-04T10:01:00Z"
    assert incarnation(local, remote) is Incarnation.OTHER


def test_adoption_makes_the_pod_aks_own_and_then_nothing_is_to_patch() -> None:
    local = local_pod()
    remote = made_by_original_ak(local)
    patch = adoption_patch(local)
    assert patch["metadata"]["annotations"][ANNOTATION_LOCAL_UID] == POD_UID
    assert patch["metadata"]["labels"] == {LABEL_MANAGED_BY: "actual-kubelets"}
    keys = json.loads(patch["metadata"]["annotations"][ANNOTATION_PROPAGATED_KEYS])
    assert set(keys["labels"]) == set(local["metadata"]["labels"])
    # Applied, the pod is AK's own: same incarnation, nothing left to change.
    remote["metadata"]["labels"].update(patch["metadata"]["labels"])
    remote["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    assert incarnation(local, remote) is Incarnation.SAME
    desired = made_by_ak(local)
    assert remote_pod_patch(local, remote, desired) is None
