"""PersistentVolumeClaims provisioned on the remote cluster's storage: what to write, and when.

AK is the external provisioner of the local StorageClasses whose
``provisioner`` is ``PROVISIONER`` (``volumeBindingMode: WaitForFirstConsumer``).
The local scheduler picks a node for a pod whose claim is unbound and names
it in the claim's ``volume.kubernetes.io/selected-node`` annotation; the AK of
that node, and only that one, provisions:

1. a claim of the same name in the pod's remote namespace (``remote_claim``),
   in the remote class the local class names (``resolve_remote_class``),
   labelled as AK's and carrying the local claim's UID, so a restarted AK
   finds what it made and never takes a claim it did not make;
2. once the remote claim is bound (or waits for its first consumer), a local
   PersistentVolume pre-bound to the local claim (``local_volume``): named
   after the local claim's UID, so creating it twice is a conflict, not a
   second volume; an inert CSI source naming the remote claim; a required
   node affinity to this AK node, so later pods of the claim come back here.

The remote pod keeps ``claimName`` (a generic ephemeral volume becomes the
claim the local ephemeral controller made, ``<pod>-<volume>``), so the
remote cluster mounts its own claim.

A remote claim is deleted only when its local volume was released (its
local claim is gone) under reclaim policy ``Delete`` (``release_step``),
and only if the remote claim is AK's and was made for that very claim.
Everything here is pure: dicts in, dicts or decisions out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from ak.core.labels import (
    ANNOTATION_LOCAL_UID,
    LABEL_MANAGED_BY,
    LABEL_NAMESPACE,
    LABEL_NODE,
    LABEL_VOLUME,
    MANAGED_BY_VALUE,
    VOLUME_VALUE,
    ownership_labels,
)
from ak.core.quantity import parse_quantity
from ak.core.types import Obj

PROVISIONER: Final = "actual.vk"
"""The ``provisioner`` of AK's local StorageClasses, and the CSI driver named by
the local volumes (no such driver runs anywhere: the volumes are placeholders)."""

DEFAULT_CLASS: Final = "actual-kubelets"
"""The local class that provisions in the remote cluster's default class."""
CLASS_PREFIX: Final = "actual-kubelets-"
"""``actual-kubelets-<remote class>``: the local class for one remote class."""
PARAM_REMOTE_CLASS: Final = "remoteStorageClass"
"""Parameter of a local class: the remote class it provisions in (absent: the
remote default)."""

ANNOTATION_SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"
ANNOTATION_STORAGE_PROVISIONER: Final = "volume.kubernetes.io/storage-provisioner"
ANNOTATION_BETA_STORAGE_PROVISIONER: Final = "volume.beta.kubernetes.io/storage-provisioner"
ANNOTATION_PROVISIONED_BY: Final = "pv.kubernetes.io/provisioned-by"
ANNOTATION_DEFAULT_CLASS: Final = "storageclass.kubernetes.io/is-default-class"

ANNOTATION_REMOTE_NAMESPACE: Final = "actual.vk/remote-namespace"
ANNOTATION_REMOTE_CLAIM: Final = "actual.vk/remote-claim"
ANNOTATION_REMOTE_CLAIM_UID: Final = "actual.vk/remote-claim-uid"
ANNOTATION_REMOTE_CLASS: Final = "actual.vk/remote-storage-class"
ANNOTATION_REMOTE_VOLUME: Final = "actual.vk/remote-volume"
"""On a local volume: where its data is on the remote cluster (namespace,
claim, its UID, class, and the remote PersistentVolume once bound)."""

FINALIZER: Final = "actual.vk/remote-claim"
"""On a local volume: its reclaim policy has yet to be applied to the remote
claim (``release_step``)."""

HOSTNAME_LABEL: Final = "kubernetes.io/hostname"

REASON_PROVISIONING: Final = "Provisioning"
REASON_PROVISIONED: Final = "ProvisioningSucceeded"
REASON_FAILED: Final = "ProvisioningFailed"
REASON_RESIZE_FAILED: Final = "VolumeResizeFailed"
REASON_RESIZED: Final = "VolumeResizeSuccessful"
REASON_WAITING: Final = "WaitingForVolume"
REASON_REMOTE_CLAIM_MISSING: Final = "RemoteClaimMissing"
REASON_VOLUME: Final = "UnsupportedVolume"


class StorageError(Exception):
    """A claim AK cannot provision (or a volume it cannot serve) as it is:
    ``reason`` for the Event, ``message`` says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


# -- classes ---------------------------------------------------------------------------


def local_class_name(remote_class: str) -> str:
    return CLASS_PREFIX + remote_class


def is_default_class(storage_class: Obj) -> bool:
    annotations = storage_class.get("metadata", {}).get("annotations") or {}
    return bool(
        annotations.get(ANNOTATION_DEFAULT_CLASS) == "true"
        or annotations.get("storageclass.beta.kubernetes.io/is-default-class") == "true"
    )


def allowed_class(name: str, allowed: tuple[str, ...]) -> bool:
    """Whether the operator's allow-list (empty: every class) admits remote class ``name``."""
    return not allowed or name in allowed


def remote_default_class(remote_classes: list[Obj]) -> Obj | None:
    """The remote default class: the newest of those annotated default, as the API
    server's DefaultStorageClass admission picks."""
    defaults = [c for c in remote_classes if is_default_class(c)]
    if not defaults:
        return None
    return max(
        defaults,
        key=lambda c: (c["metadata"].get("creationTimestamp", ""), c["metadata"]["name"]),
    )


def local_class(name: str, remote: Obj | None) -> Obj:
    """A local StorageClass AK provisions for: ``remote`` the remote class it maps
    (None: the remote default, whichever it is when a claim is provisioned).

    Reclaim policy and expansion are the remote class's, so the local volume
    says what becomes of the remote one; the default class allows expansion
    (a remote class that does not is reported on the claim)."""
    obj: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": name,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY_VALUE},
        },
        "provisioner": PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Delete",
        "allowVolumeExpansion": True,
    }
    if remote is not None:
        obj["parameters"] = {PARAM_REMOTE_CLASS: remote["metadata"]["name"]}
        obj["reclaimPolicy"] = remote.get("reclaimPolicy") or "Delete"
        obj["allowVolumeExpansion"] = bool(remote.get("allowVolumeExpansion"))
    return obj


def local_classes(remote_classes: list[Obj], allowed: tuple[str, ...]) -> list[Obj]:
    """The local classes AK keeps: the default one and one per allowed remote class."""
    wanted = [local_class(DEFAULT_CLASS, None)]
    for remote in sorted(remote_classes, key=lambda c: str(c["metadata"]["name"])):
        name = remote["metadata"]["name"]
        if allowed_class(name, allowed) and len(local_class_name(name)) <= 253:
            wanted.append(local_class(local_class_name(name), remote))
    return wanted


def class_patch(desired: Obj, current: Obj) -> Obj | None:
    """What to change on an existing local class AK made: only expansion may change
    (provisioner, parameters and reclaim policy are immutable); a class someone
    else made under the name is left alone."""
    labels = current.get("metadata", {}).get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY_VALUE or current.get("provisioner") != (
        PROVISIONER
    ):
        return None
    want = bool(desired.get("allowVolumeExpansion"))
    if bool(current.get("allowVolumeExpansion")) == want:
        return None
    return {"allowVolumeExpansion": want}


def resolve_remote_class(
    local_class: Obj | None, remote_classes: list[Obj], allowed: tuple[str, ...]
) -> Obj:
    """The remote class a claim of ``local_class`` is provisioned in; raises
    ``StorageError`` saying what to do when there is none it may use."""
    if local_class is None:
        raise StorageError(REASON_FAILED, "the claim's StorageClass does not exist")
    params: dict[str, str] = local_class.get("parameters") or {}
    wanted = params.get(PARAM_REMOTE_CLASS)
    by_name = {c["metadata"]["name"]: c for c in remote_classes}
    if wanted is None:
        default = remote_default_class(remote_classes)
        if default is None:
            raise StorageError(
                REASON_FAILED,
                f"the remote cluster has no default StorageClass; use one of AK's classes "
                f"naming a remote class ({_choices(remote_classes, allowed)})",
            )
        wanted = default["metadata"]["name"]
    if not allowed_class(wanted, allowed):
        raise StorageError(
            REASON_FAILED,
            f"remote StorageClass {wanted!r} is not among those this node's operator allows "
            f"([storage] remoteClasses); use {_choices(remote_classes, allowed)}",
        )
    found = by_name.get(wanted)
    if found is None:
        raise StorageError(
            REASON_FAILED,
            f"the remote cluster has no StorageClass {wanted!r}; use "
            f"{_choices(remote_classes, allowed)}",
        )
    return found


def _choices(remote_classes: list[Obj], allowed: tuple[str, ...]) -> str:
    names = sorted(
        local_class_name(c["metadata"]["name"])
        for c in remote_classes
        if allowed_class(c["metadata"]["name"], allowed)
    )
    return "one of " + ", ".join(names) if names else "no class: the remote cluster offers none"


# -- which claims are this node's -------------------------------------------------------


def provisioner_of(claim: Obj) -> str:
    annotations = claim.get("metadata", {}).get("annotations") or {}
    return str(
        annotations.get(ANNOTATION_STORAGE_PROVISIONER)
        or annotations.get(ANNOTATION_BETA_STORAGE_PROVISIONER)
        or ""
    )


def selected_node(claim: Obj) -> str:
    annotations = claim.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(ANNOTATION_SELECTED_NODE) or "")


def served_here(claim: Obj, node_name: str, class_provisioner: str | None) -> bool:
    """Whether this node provisions ``claim``: the scheduler picked this node for it,
    and its class is AK's (as the claim's provisioner annotation, set by the
    local volume controller, or the class itself says)."""
    provisioner = provisioner_of(claim) or class_provisioner
    return provisioner == PROVISIONER and selected_node(claim) == node_name


def binding_problem(claim: Obj, claim_class: Obj | None) -> str | None:
    """Why an unbound claim of an AK class no scheduler will pick a node for is
    never provisioned, or None. AK provisions on the remote cluster of the AK
    node the claim's first pod is scheduled to, which only
    ``WaitForFirstConsumer`` binding names; with ``Immediate`` (the API's
    default) the local volume controller waits for a provisioner that never
    comes, and the pod for a claim that is never bound."""
    if claim_class is None or claim_class.get("provisioner") != PROVISIONER:
        return None
    if (claim.get("spec") or {}).get("volumeName") or selected_node(claim):
        return None
    mode = claim_class.get("volumeBindingMode") or "Immediate"
    if mode == "WaitForFirstConsumer":
        return None
    name = claim_class.get("metadata", {}).get("name", "")
    return (
        f"StorageClass {name} has volumeBindingMode {mode}: AK provisions a claim on the "
        "remote cluster of the AK node its first pod is scheduled to, so its classes need "
        "volumeBindingMode: WaitForFirstConsumer (recreate the class with it, or use "
        "AK's own classes)"
    )


def requested_storage(claim: Obj) -> str:
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    return str(requests.get("storage") or "")


def _larger(a: str, b: str) -> bool:
    """Quantity ``a`` is larger than ``b`` (an unparsable one never is)."""
    try:
        return parse_quantity(a) > parse_quantity(b)
    except ValueError:
        return False


# -- the remote claim -------------------------------------------------------------------


def remote_claim(local: Obj, *, node_label: str, remote_namespace: str, remote_class: str) -> Obj:
    """The claim to create remotely for local claim ``local``; raises ``StorageError``
    for what cannot cross to another cluster (a selector over local volumes, a
    data source naming local objects)."""
    meta = local["metadata"]
    spec: dict[str, Any] = local.get("spec") or {}
    if spec.get("selector"):
        raise StorageError(
            REASON_FAILED,
            "a claim with spec.selector picks among existing local volumes; AK provisions "
            "new ones on the remote cluster: remove the selector",
        )
    if spec.get("dataSource") or spec.get("dataSourceRef"):
        raise StorageError(
            REASON_FAILED,
            "spec.dataSource names a local object (snapshot, claim or populator) the remote "
            "cluster cannot read: create the claim without it",
        )
    remote_spec: Obj = {
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "resources": {"requests": {"storage": requested_storage(local)}},
        "storageClassName": remote_class,
        "volumeMode": spec.get("volumeMode") or "Filesystem",
    }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": meta["name"],
            "namespace": remote_namespace,
            "labels": {
                **ownership_labels(node_label, meta["namespace"]),
                LABEL_VOLUME: VOLUME_VALUE,
            },
            "annotations": {ANNOTATION_LOCAL_UID: meta["uid"]},
        },
        "spec": remote_spec,
    }


def is_own_claim(remote: Obj, node_label: str, local_namespace: str) -> bool:
    """AK made ``remote`` for this node and local namespace (for some local claim)."""
    labels = remote.get("metadata", {}).get("labels") or {}
    return (
        labels.get(LABEL_NODE) == node_label
        and labels.get(LABEL_NAMESPACE) == local_namespace
        and labels.get(LABEL_MANAGED_BY) == MANAGED_BY_VALUE
        and labels.get(LABEL_VOLUME) == VOLUME_VALUE
    )


def made_for(remote: Obj) -> str:
    """UID of the local claim the remote one was made for."""
    annotations = remote.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(ANNOTATION_LOCAL_UID) or "")


# -- provisioning ---------------------------------------------------------------------


class Step(enum.Enum):
    NOTHING = "nothing"
    CREATE_REMOTE = "create-remote"
    WAIT = "wait"
    CREATE_VOLUME = "create-volume"
    FAIL = "fail"


@dataclass(frozen=True)
class Decision:
    step: Step
    message: str = ""


def provisioning_step(
    local: Obj, remote: Obj | None, *, node_label: str, first_consumer: bool
) -> Decision:
    """What to do next for an unbound local claim this node serves, given the remote
    claim of its name (None: there is none). ``first_consumer``: the remote class
    binds when a pod first uses the claim, so the remote claim stays Pending
    until the remote pod exists, which waits for the local volume."""
    meta = local["metadata"]
    if meta.get("deletionTimestamp") or (local.get("spec") or {}).get("volumeName"):
        return Decision(Step.NOTHING)
    if remote is None:
        return Decision(Step.CREATE_REMOTE)
    rmeta = remote["metadata"]
    where = f"{rmeta.get('namespace')}/{rmeta['name']}"
    if not is_own_claim(remote, node_label, meta["namespace"]):
        return Decision(
            Step.FAIL,
            f"remote claim {where} exists and was not made by AK for this node; it is left "
            "alone: delete or rename it on the remote cluster, or rename this claim",
        )
    if made_for(remote) != meta["uid"]:
        return Decision(
            Step.FAIL,
            f"remote claim {where} holds the data of an earlier claim of this name (local "
            f"claim UID {made_for(remote) or 'unknown'}), whose volume was retained; AK does "
            "not hand it to a new claim: delete that remote claim (or the released local "
            "volume with reclaim policy Delete) to provision a new one",
        )
    if rmeta.get("deletionTimestamp"):
        return Decision(Step.WAIT, f"remote claim {where} is being deleted")
    phase = (remote.get("status") or {}).get("phase") or "Pending"
    if phase == "Bound" or (phase == "Pending" and first_consumer):
        return Decision(Step.CREATE_VOLUME)
    if phase == "Lost":
        return Decision(
            Step.FAIL,
            f"remote claim {where} lost its volume on the remote cluster",
        )
    return Decision(Step.WAIT, f"waiting for remote claim {where} to be bound")


def volume_name(local: Obj) -> str:
    """The local volume of a claim: named after its UID, as external provisioners do."""
    return f"pvc-{local['metadata']['uid']}"


def local_volume(
    local: Obj,
    remote: Obj,
    *,
    hostname: str,
    reclaim_policy: str,
    remote_class: str,
    local_class: str,
) -> Obj:
    """The local PersistentVolume for ``local``, pre-bound to it, describing ``remote``.

    Capacity and access modes are the remote claim's once bound (the remote
    volume's), else what was asked. The source is an inert CSI volume of
    driver ``PROVISIONER`` whose handle names the remote claim: no kubelet
    mounts it, and ``kubectl describe pv`` says where the data is. The node
    affinity pins every pod of the claim to this AK node (``hostname``, its
    ``kubernetes.io/hostname`` label)."""
    meta = local["metadata"]
    rmeta = remote["metadata"]
    rstatus = remote.get("status") or {}
    bound = rstatus.get("phase") == "Bound"
    capacity = (rstatus.get("capacity") or {}).get("storage") if bound else None
    modes = (rstatus.get("accessModes") if bound else None) or (
        (local.get("spec") or {}).get("accessModes") or ["ReadWriteOnce"]
    )
    annotations = {
        ANNOTATION_PROVISIONED_BY: PROVISIONER,
        ANNOTATION_REMOTE_NAMESPACE: rmeta["namespace"],
        ANNOTATION_REMOTE_CLAIM: rmeta["name"],
        ANNOTATION_REMOTE_CLAIM_UID: rmeta.get("uid", ""),
        ANNOTATION_REMOTE_CLASS: remote_class,
    }
    remote_volume = (remote.get("spec") or {}).get("volumeName")
    if remote_volume:
        annotations[ANNOTATION_REMOTE_VOLUME] = remote_volume
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(local),
            "labels": {LABEL_NODE: hostname, LABEL_MANAGED_BY: MANAGED_BY_VALUE},
            "annotations": annotations,
            "finalizers": [FINALIZER],
        },
        "spec": {
            "capacity": {"storage": capacity or requested_storage(local)},
            "accessModes": list(modes),
            "persistentVolumeReclaimPolicy": reclaim_policy,
            "storageClassName": local_class,
            "volumeMode": (local.get("spec") or {}).get("volumeMode") or "Filesystem",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "csi": {
                "driver": PROVISIONER,
                "volumeHandle": f"{rmeta['namespace']}/{rmeta['name']}",
                "volumeAttributes": {
                    "remoteNamespace": rmeta["namespace"],
                    "remoteClaim": rmeta["name"],
                },
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}
                            ]
                        }
                    ]
                }
            },
        },
    }


def is_own_volume(volume: Obj, hostname: str) -> bool:
    """A local volume this node provisioned."""
    meta = volume.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return (
        annotations.get(ANNOTATION_PROVISIONED_BY) == PROVISIONER
        and labels.get(LABEL_NODE) == hostname
    )


def remote_of(volume: Obj) -> tuple[str, str]:
    """(remote namespace, remote claim) a local volume of AK's stands for."""
    annotations = volume.get("metadata", {}).get("annotations") or {}
    return (
        str(annotations.get(ANNOTATION_REMOTE_NAMESPACE) or ""),
        str(annotations.get(ANNOTATION_REMOTE_CLAIM) or ""),
    )


def volume_patch(volume: Obj, remote: Obj) -> Obj | None:
    """Keep the local volume's capacity and record of the remote volume in step
    with the remote claim once it is bound (a first-consumer class binds after
    the volume was made; an expansion grows it)."""
    status = remote.get("status") or {}
    if status.get("phase") != "Bound":
        return None
    patch: Obj = {}
    capacity = (status.get("capacity") or {}).get("storage")
    current = ((volume.get("spec") or {}).get("capacity") or {}).get("storage", "")
    if capacity and capacity != current:
        patch["spec"] = {"capacity": {"storage": capacity}}
    remote_volume = (remote.get("spec") or {}).get("volumeName")
    annotations = volume.get("metadata", {}).get("annotations") or {}
    if remote_volume and annotations.get(ANNOTATION_REMOTE_VOLUME) != remote_volume:
        patch["metadata"] = {"annotations": {ANNOTATION_REMOTE_VOLUME: remote_volume}}
    return patch or None


# -- release ---------------------------------------------------------------------------


class Release(enum.Enum):
    KEEP = "keep"  # in use, or not released yet
    DELETE_REMOTE = "delete-remote"  # reclaim Delete: the remote claim goes, then the volume
    FORGET = "forget"  # the volume may go; nothing remote is deleted


def release_step(volume: Obj, remote: Obj | None, *, node_label: str) -> Release:
    """What becomes of a local volume of AK's and its remote claim.

    Only a Released volume (its claim is gone, as the local volume controller
    judged) under reclaim policy ``Delete`` deletes its remote claim, and only
    a remote claim AK made for the volume's claim. A volume deleted by hand is
    let go without touching the remote claim unless that same rule holds;
    with ``Retain`` nothing remote is ever deleted."""
    meta = volume.get("metadata") or {}
    spec = volume.get("spec") or {}
    released = (volume.get("status") or {}).get("phase") in ("Released", "Failed")
    deleting = bool(meta.get("deletionTimestamp"))
    policy = spec.get("persistentVolumeReclaimPolicy") or "Delete"
    if not released and not deleting:
        return Release.KEEP
    claim_uid = (spec.get("claimRef") or {}).get("uid", "")
    ours = (
        remote is not None
        and is_own_claim(remote, node_label, (spec.get("claimRef") or {}).get("namespace", ""))
        and made_for(remote) == claim_uid
    )
    if policy == "Delete" and released and ours:
        return Release.DELETE_REMOTE
    if policy == "Delete" and released and remote is None:
        return Release.FORGET  # already gone remotely: the volume may go
    if deleting:
        return Release.FORGET
    return Release.KEEP  # Retain (or a remote claim not ours): the volume stays and says where


# -- expansion -------------------------------------------------------------------------


def expansion_patch(local: Obj, remote: Obj) -> Obj | None:
    """The remote claim's request raised to the local claim's, if it grew."""
    want = requested_storage(local)
    have = requested_storage(remote)
    if want and have and _larger(want, have):
        return {"spec": {"resources": {"requests": {"storage": want}}}}
    return None


_RESIZE_CONDITIONS = ("Resizing", "FileSystemResizePending", "ControllerResizeError")


def claim_status_patch(local: Obj, remote: Obj) -> Obj | None:
    """The local claim's capacity and resize conditions as the remote claim has them
    (once the local one is bound: before, the local volume controller owns them)."""
    lstatus = local.get("status") or {}
    rstatus = remote.get("status") or {}
    if lstatus.get("phase") != "Bound" or rstatus.get("phase") != "Bound":
        return None
    patch: Obj = {}
    capacity = (rstatus.get("capacity") or {}).get("storage")
    if capacity and (lstatus.get("capacity") or {}).get("storage") != capacity:
        patch["capacity"] = {**(lstatus.get("capacity") or {}), "storage": capacity}
        patch["allocatedResources"] = {"storage": capacity}
    remote_conditions = [
        c for c in rstatus.get("conditions") or [] if c.get("type") in _RESIZE_CONDITIONS
    ]
    local_conditions = [
        c for c in lstatus.get("conditions") or [] if c.get("type") in _RESIZE_CONDITIONS
    ]
    if _condition_view(remote_conditions) != _condition_view(local_conditions):
        others = [
            c for c in lstatus.get("conditions") or [] if c.get("type") not in _RESIZE_CONDITIONS
        ]
        patch["conditions"] = others + remote_conditions
    if patch and "allocatedResourceStatuses" in lstatus:
        patch["allocatedResourceStatuses"] = rstatus.get("allocatedResourceStatuses")
    return patch or None


def _condition_view(conditions: list[Obj]) -> list[tuple[str, str, str]]:
    return sorted(
        (c.get("type", ""), c.get("status", ""), c.get("message", "")) for c in conditions
    )


# -- pods ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodClaim:
    volume: str  # the pod's volume name
    claim: str  # the local (and remote) claim name
    ephemeral: bool


def ephemeral_claim_name(pod_name: str, volume: str) -> str:
    """The claim the local ephemeral volume controller makes for a pod's volume."""
    return f"{pod_name}-{volume}"


def pod_claims(pod: Obj) -> list[PodClaim]:
    """The claims a pod's volumes use, generic ephemeral volumes included."""
    name = pod["metadata"]["name"]
    out: list[PodClaim] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        vname = volume.get("name", "")
        if "persistentVolumeClaim" in volume:
            claim = (volume["persistentVolumeClaim"] or {}).get("claimName", "")
            out.append(PodClaim(vname, claim, False))
        elif "ephemeral" in volume:
            out.append(PodClaim(vname, ephemeral_claim_name(name, vname), True))
    return out


def rewrite_ephemeral(volumes: list[Obj], pod_name: str) -> list[Obj]:
    """``volumes`` with each generic ephemeral volume replaced by the claim the local
    ephemeral controller made for it, which AK provisions remotely under that
    name: the remote ephemeral controller must not make a second claim."""
    out: list[Obj] = []
    for volume in volumes:
        if "ephemeral" in volume:
            name = volume.get("name", "")
            out.append(
                {
                    "name": name,
                    "persistentVolumeClaim": {"claimName": ephemeral_claim_name(pod_name, name)},
                }
            )
        else:
            out.append(volume)
    return out


def claim_serves_pod(
    pod: Obj, pod_claim: PodClaim, claim: Obj | None, volume: Obj | None, hostname: str
) -> Decision:
    """Whether the remote pod may be made as far as one of its claims goes:
    ``NOTHING`` (it may), ``WAIT`` (not yet) or ``FAIL`` (never, as it is)."""
    if claim is None:
        return Decision(Step.WAIT, f'waiting for claim "{pod_claim.claim}" to exist')
    if pod_claim.ephemeral:
        owners = claim["metadata"].get("ownerReferences") or []
        if not any(o.get("uid") == pod["metadata"].get("uid") for o in owners):
            return Decision(
                Step.FAIL,
                f'claim "{pod_claim.claim}" of ephemeral volume "{pod_claim.volume}" was not '
                "made for this pod: delete the claim or rename the volume",
            )
    volume_name_ = (claim.get("spec") or {}).get("volumeName")
    if not volume_name_:
        return Decision(Step.WAIT, f'waiting for claim "{pod_claim.claim}" to be bound')
    if volume is None:
        return Decision(Step.WAIT, f'waiting for volume "{volume_name_}" to be seen')
    annotations = volume.get("metadata", {}).get("annotations") or {}
    if annotations.get(ANNOTATION_PROVISIONED_BY) != PROVISIONER:
        return Decision(
            Step.FAIL,
            f'volume "{pod_claim.volume}" uses claim "{pod_claim.claim}", bound to local '
            f'volume "{volume_name_}", which the remote cluster cannot reach: use a claim '
            f"of storage class {DEFAULT_CLASS} (or {CLASS_PREFIX}<remote class>)",
        )
    if not is_own_volume(volume, hostname):
        return Decision(
            Step.FAIL,
            f'claim "{pod_claim.claim}" lives on another AK node\'s remote cluster; its '
            "volume's node affinity keeps its pods there",
        )
    return Decision(Step.NOTHING)
