"""The pure storage core: classes, remote claims, local volumes, provisioning and release."""

from __future__ import annotations

import copy

import pytest

from ak.core import storage
from ak.core.errors import TranslationError
from ak.core.labels import ANNOTATION_LOCAL_UID, LABEL_NODE, LABEL_VOLUME
from ak.core.pods import to_remote_pod
from ak.core.storage import Decision, Release, Step, StorageError
from ak.core.types import Obj

NODE = "ak-1"
LABEL = "ak-1"
RNS = "ak-1-apps"


def claim(name: str = "data-web-0", uid: str = "u1", **spec: Obj | str) -> Obj:
    return {
        "metadata": {
            "name": name,
            "namespace": "apps",
            "uid": uid,
            "annotations": {
                storage.ANNOTATION_SELECTED_NODE: NODE,
                storage.ANNOTATION_STORAGE_PROVISIONER: storage.PROVISIONER,
            },
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": storage.DEFAULT_CLASS,
            **spec,
        },
        "status": {"phase": "Pending"},
    }


def remote_class(name: str, *, default: bool = False, **extra: object) -> Obj:
    meta: Obj = {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"}
    if default:
        meta["annotations"] = {storage.ANNOTATION_DEFAULT_CLASS: "true"}
    return {"metadata": meta, "provisioner": "rancher.io/local-path", **extra}


def made(local: Obj, phase: str = "Pending", **status: object) -> Obj:
    remote = storage.remote_claim(local, node_label=LABEL, remote_namespace=RNS, remote_class="x")
    remote["metadata"]["uid"] = "r1"
    remote["status"] = {"phase": phase, **status}
    return remote


# -- classes ---------------------------------------------------------------------------


def test_local_classes_default_and_one_per_allowed_remote_class() -> None:
    remotes = [
        remote_class("fast", reclaimPolicy="Retain", allowVolumeExpansion=True),
        remote_class("slow"),
    ]
    classes = storage.local_classes(remotes, ())
    by_name = {c["metadata"]["name"]: c for c in classes}
    assert set(by_name) == {"actual-kubelets", "actual-kubelets-fast", "actual-kubelets-slow"}
    default = by_name["actual-kubelets"]
    assert default["provisioner"] == storage.PROVISIONER
    assert default["volumeBindingMode"] == "WaitForFirstConsumer"
    assert "parameters" not in default
    fast = by_name["actual-kubelets-fast"]
    assert fast["parameters"] == {storage.PARAM_REMOTE_CLASS: "fast"}
    assert fast["reclaimPolicy"] == "Retain"
    assert fast["allowVolumeExpansion"] is True
    assert by_name["actual-kubelets-slow"]["reclaimPolicy"] == "Delete"
    assert by_name["actual-kubelets-slow"]["allowVolumeExpansion"] is False
    only = storage.local_classes(remotes, ("slow",))
    assert [c["metadata"]["name"] for c in only] == ["actual-kubelets", "actual-kubelets-slow"]


def test_class_patch_only_expansion_and_only_on_ak_classes() -> None:
    desired = storage.local_class("actual-kubelets-fast", remote_class("fast"))
    current = copy.deepcopy(desired)
    assert storage.class_patch(desired, current) is None
    current["allowVolumeExpansion"] = True
    assert storage.class_patch(desired, current) == {"allowVolumeExpansion": False}
    foreign = {**current, "metadata": {"name": "actual-kubelets-fast"}}
    assert storage.class_patch(desired, foreign) is None


def test_resolve_remote_class() -> None:
    remotes = [remote_class("a"), remote_class("b", default=True)]
    default_class = storage.local_class(storage.DEFAULT_CLASS, None)
    assert storage.resolve_remote_class(default_class, remotes, ())["metadata"]["name"] == "b"
    named = storage.local_class("actual-kubelets-a", remote_class("a"))
    assert storage.resolve_remote_class(named, remotes, ())["metadata"]["name"] == "a"
    with pytest.raises(StorageError, match="not among those"):
        storage.resolve_remote_class(named, remotes, ("b",))
    missing = storage.local_class("actual-kubelets-gone", remote_class("gone"))
    with pytest.raises(StorageError, match=r"no StorageClass 'gone'.*actual-kubelets-a"):
        storage.resolve_remote_class(missing, remotes, ())
    with pytest.raises(StorageError, match="no default StorageClass"):
        storage.resolve_remote_class(default_class, [remote_class("a")], ())
    with pytest.raises(StorageError, match="does not exist"):
        storage.resolve_remote_class(None, remotes, ())


def test_newest_default_class_wins() -> None:
    old = remote_class("old", default=True)
    new = remote_class("new", default=True)
    new["metadata"]["creationTimestamp"] = "2026-06-01T00:00:00Z"
    assert storage.remote_default_class([new, old]) is new


def test_served_here_needs_ak_provisioner_and_this_node() -> None:
    c = claim()
    assert storage.served_here(c, NODE, None)
    assert not storage.served_here(c, "ak-2", None)
    other = claim()
    other["metadata"]["annotations"][storage.ANNOTATION_STORAGE_PROVISIONER] = "ebs.csi.aws.com"
    assert not storage.served_here(other, NODE, storage.PROVISIONER)
    unannotated = claim()
    del unannotated["metadata"]["annotations"][storage.ANNOTATION_STORAGE_PROVISIONER]
    assert storage.served_here(unannotated, NODE, storage.PROVISIONER)
    assert not storage.served_here(unannotated, NODE, None)


def test_an_immediate_ak_class_is_told_because_no_node_is_ever_picked() -> None:
    immediate = {"metadata": {"name": "fast"}, "provisioner": storage.PROVISIONER}
    unselected = claim()
    del unselected["metadata"]["annotations"][storage.ANNOTATION_SELECTED_NODE]
    problem = storage.binding_problem(unselected, immediate)
    assert problem is not None
    assert "StorageClass fast" in problem and "WaitForFirstConsumer" in problem
    waits = {**immediate, "volumeBindingMode": "WaitForFirstConsumer"}
    assert storage.binding_problem(unselected, waits) is None
    # Not AK's class, or already on its way: nothing to tell.
    assert storage.binding_problem(unselected, {**immediate, "provisioner": "x.csi"}) is None
    assert storage.binding_problem(unselected, None) is None
    assert storage.binding_problem(claim(), immediate) is None
    assert storage.binding_problem(claim(volumeName="pvc-1"), immediate) is None


# -- the remote claim -------------------------------------------------------------------


def test_remote_claim_same_name_owned_and_tied_to_the_local_uid() -> None:
    remote = storage.remote_claim(
        claim(volumeMode="Block"), node_label=LABEL, remote_namespace=RNS, remote_class="fast"
    )
    meta = remote["metadata"]
    assert (meta["name"], meta["namespace"]) == ("data-web-0", RNS)
    assert meta["labels"][LABEL_NODE] == LABEL
    assert meta["labels"][LABEL_VOLUME] == "true"
    assert meta["annotations"][ANNOTATION_LOCAL_UID] == "u1"
    assert remote["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "fast",
        "volumeMode": "Block",
    }
    assert storage.is_own_claim(remote, LABEL, "apps")
    assert not storage.is_own_claim(remote, "ak-2", "apps")
    assert not storage.is_own_claim(remote, LABEL, "other")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("selector", {"matchLabels": {"a": "b"}}, "remove the selector"),
        ("dataSource", {"kind": "VolumeSnapshot", "name": "s"}, "dataSource"),
        ("dataSourceRef", {"kind": "PersistentVolumeClaim", "name": "c"}, "dataSource"),
    ],
)
def test_remote_claim_refuses_what_cannot_cross(field: str, value: Obj, match: str) -> None:
    local = claim()
    local["spec"][field] = value
    with pytest.raises(StorageError, match=match):
        storage.remote_claim(local, node_label=LABEL, remote_namespace=RNS, remote_class="x")


# -- provisioning ---------------------------------------------------------------------


def step(local: Obj, remote: Obj | None, first_consumer: bool = False) -> Decision:
    return storage.provisioning_step(local, remote, node_label=LABEL, first_consumer=first_consumer)


def test_provisioning_steps() -> None:
    local = claim()
    assert step(local, None).step is Step.CREATE_REMOTE
    assert step(local, made(local)).step is Step.WAIT
    assert step(local, made(local), first_consumer=True).step is Step.CREATE_VOLUME
    assert step(local, made(local, "Bound")).step is Step.CREATE_VOLUME
    assert step(local, made(local, "Lost")).step is Step.FAIL
    deleting = made(local, "Bound")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert step(local, deleting).step is Step.WAIT
    bound = claim(volumeName="pvc-u1")
    assert step(bound, None).step is Step.NOTHING


def test_a_remote_claim_not_made_for_this_claim_is_never_taken() -> None:
    local = claim()
    foreign = made(local, "Bound")
    foreign["metadata"]["labels"] = {}
    decided = step(local, foreign)
    assert decided.step is Step.FAIL and "not made by AK" in decided.message
    earlier = made(claim(uid="u0"), "Bound")
    decided = step(local, earlier)
    assert (
        decided.step is Step.FAIL and "earlier claim" in decided.message and "u0" in decided.message
    )


def test_local_volume_describes_the_remote_claim_and_pins_the_node() -> None:
    local = claim()
    remote = made(local, "Bound", capacity={"storage": "2Gi"}, accessModes=["ReadWriteOnce"])
    remote["spec"]["volumeName"] = "pvc-remote"
    pv = storage.local_volume(
        local,
        remote,
        hostname=LABEL,
        reclaim_policy="Retain",
        remote_class="fast",
        local_class="actual-kubelets-fast",
    )
    assert pv["metadata"]["name"] == "pvc-u1"
    assert pv["spec"]["capacity"] == {"storage": "2Gi"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["claimRef"]["uid"] == "u1"
    assert pv["spec"]["csi"]["volumeHandle"] == f"{RNS}/data-web-0"
    term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [LABEL]}
    ]
    annotations = pv["metadata"]["annotations"]
    assert annotations[storage.ANNOTATION_REMOTE_VOLUME] == "pvc-remote"
    assert storage.remote_of(pv) == (RNS, "data-web-0")
    assert storage.is_own_volume(pv, LABEL)
    assert not storage.is_own_volume(pv, "ak-2")
    assert pv["metadata"]["finalizers"] == [storage.FINALIZER]


def test_local_volume_before_a_first_consumer_binds_says_what_was_asked() -> None:
    local = claim()
    pv = storage.local_volume(
        local,
        made(local),
        hostname=LABEL,
        reclaim_policy="Delete",
        remote_class="x",
        local_class="actual-kubelets",
    )
    assert pv["spec"]["capacity"] == {"storage": "1Gi"}
    assert storage.ANNOTATION_REMOTE_VOLUME not in pv["metadata"]["annotations"]
    bound = made(local, "Bound", capacity={"storage": "1Gi"})
    bound["spec"]["volumeName"] = "pvc-r"
    assert storage.volume_patch(pv, bound) == {
        "metadata": {"annotations": {storage.ANNOTATION_REMOTE_VOLUME: "pvc-r"}}
    }
    grown = made(local, "Bound", capacity={"storage": "3Gi"})
    assert storage.volume_patch(pv, grown) == {"spec": {"capacity": {"storage": "3Gi"}}}
    assert storage.volume_patch(pv, made(local)) is None


# -- release ---------------------------------------------------------------------------


def volume(policy: str, phase: str = "Released", deleting: bool = False) -> Obj:
    local = claim()
    pv = storage.local_volume(
        local,
        made(local, "Bound"),
        hostname=LABEL,
        reclaim_policy=policy,
        remote_class="x",
        local_class="actual-kubelets",
    )
    pv["status"] = {"phase": phase}
    if deleting:
        pv["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return pv


def release(pv: Obj, remote: Obj | None) -> Release:
    return storage.release_step(pv, remote, node_label=LABEL)


def test_release_delete_removes_only_the_claim_made_for_it() -> None:
    ours = made(claim(), "Bound")
    assert release(volume("Delete", "Bound"), ours) is Release.KEEP
    assert release(volume("Delete"), ours) is Release.DELETE_REMOTE
    assert release(volume("Delete"), None) is Release.FORGET
    other_incarnation = made(claim(uid="u2"), "Bound")
    assert release(volume("Delete"), other_incarnation) is Release.KEEP
    foreign = made(claim(), "Bound")
    foreign["metadata"]["labels"] = {}
    assert release(volume("Delete"), foreign) is Release.KEEP
    assert release(volume("Delete", deleting=True), foreign) is Release.FORGET


def test_release_retain_never_deletes_remotely() -> None:
    ours = made(claim(), "Bound")
    assert release(volume("Retain"), ours) is Release.KEEP
    assert release(volume("Retain", deleting=True), ours) is Release.FORGET
    assert release(volume("Retain", "Bound", deleting=True), ours) is Release.FORGET


# -- expansion -------------------------------------------------------------------------


def test_expansion_raises_the_remote_request_only_upwards() -> None:
    local = claim()
    remote = made(local, "Bound")
    assert storage.expansion_patch(local, remote) is None
    local["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert storage.expansion_patch(local, remote) == {
        "spec": {"resources": {"requests": {"storage": "2Gi"}}}
    }
    remote["spec"]["resources"]["requests"]["storage"] = "4Gi"
    assert storage.expansion_patch(local, remote) is None


def test_claim_status_follows_the_remote_capacity_and_resize_conditions() -> None:
    local = claim()
    local["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    resizing = {"type": "Resizing", "status": "True", "message": "resizing"}
    remote = made(local, "Bound", capacity={"storage": "1Gi"}, conditions=[resizing])
    assert storage.claim_status_patch(local, remote) == {"conditions": [resizing]}
    remote["status"] = {"phase": "Bound", "capacity": {"storage": "2Gi"}}
    local["status"]["conditions"] = [resizing]
    assert storage.claim_status_patch(local, remote) == {
        "capacity": {"storage": "2Gi"},
        "allocatedResources": {"storage": "2Gi"},
        "conditions": [],
    }
    local["status"] = {"phase": "Bound", "capacity": {"storage": "2Gi"}}
    assert storage.claim_status_patch(local, remote) is None
    assert storage.claim_status_patch(claim(), remote) is None


# -- pods ------------------------------------------------------------------------------


def pod(*volumes: Obj) -> Obj:
    return {
        "metadata": {"name": "web-0", "namespace": "apps", "uid": "p1"},
        "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": list(volumes)},
    }


EPHEMERAL = {
    "name": "scratch",
    "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}},
}
CLAIMED = {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}


def test_pod_claims_and_the_remote_pod_keeps_claim_names() -> None:
    p = pod(CLAIMED, EPHEMERAL, {"name": "e", "emptyDir": {}})
    assert storage.pod_claims(p) == [
        storage.PodClaim("data", "data-web-0", False),
        storage.PodClaim("scratch", "web-0-scratch", True),
    ]
    remote = to_remote_pod(p, node_name=NODE, remote_namespace=RNS, extra_env=[], storage=True)
    volumes = {v["name"]: v for v in remote["spec"]["volumes"]}
    assert volumes["data"] == CLAIMED
    assert volumes["scratch"] == {
        "name": "scratch",
        "persistentVolumeClaim": {"claimName": "web-0-scratch"},
    }


def test_claims_are_refused_with_storage_off() -> None:
    with pytest.raises(TranslationError, match="storage is off") as e:
        to_remote_pod(pod(CLAIMED), node_name=NODE, remote_namespace=RNS, extra_env=[])
    assert e.value.reason == "UnsupportedVolume"
    # Without AK's storage the remote cluster makes the ephemeral claim itself.
    remote = to_remote_pod(pod(EPHEMERAL), node_name=NODE, remote_namespace=RNS, extra_env=[])
    assert remote["spec"]["volumes"] == [EPHEMERAL]


def test_claim_serves_pod() -> None:
    p = pod(CLAIMED, EPHEMERAL)
    data, scratch = storage.pod_claims(p)
    local = claim(volumeName="pvc-u1")
    pv = volume("Delete", "Bound")

    def serves(pc: storage.PodClaim, c: Obj | None, v: Obj | None, host: str = LABEL) -> Step:
        return storage.claim_serves_pod(p, pc, c, v, host).step

    assert serves(data, None, None) is Step.WAIT
    assert serves(data, claim(), None) is Step.WAIT
    assert serves(data, local, None) is Step.WAIT
    assert serves(data, local, pv) is Step.NOTHING
    assert serves(data, local, pv, "ak-2") is Step.FAIL
    foreign = copy.deepcopy(pv)
    foreign["metadata"]["annotations"] = {}
    decided = storage.claim_serves_pod(p, data, local, foreign, LABEL)
    assert decided.step is Step.FAIL and "actual-kubelets" in decided.message
    assert serves(scratch, local, pv) is Step.FAIL  # not owned by the pod
    owned = copy.deepcopy(local)
    owned["metadata"]["ownerReferences"] = [{"kind": "Pod", "name": "web-0", "uid": "p1"}]
    assert serves(scratch, owned, pv) is Step.NOTHING
