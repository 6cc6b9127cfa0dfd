"""Local pod -> remote pod, and the updates that may follow.

The remote pod is built from ALLOW-LISTS (metadata and spec), never by
copying and deleting: fields added to PodSpec in future Kubernetes versions
must not leak to the remote by default, since many (priority, schedulerName,
runtimeClassName, overhead...) refer to cluster-specific objects and fail the
remote's admission.

Dropped on purpose:

* Scheduling (nodeName, nodeSelector, affinity, topologySpreadConstraints,
  schedulerName, priority, priorityClassName, preemptionPolicy,
  schedulingGates, runtimeClassName, overhead): they describe the LOCAL
  cluster's nodes and classes; where the pod runs remotely is the remote
  cluster's business.
* ALL tolerations: local tolerations were written for local taints (the
  virtual node's ``virtual-kubelet.io/provider`` taint, and the
  ``not-ready``/``unreachable`` NoExecute ones DefaultTolerationSeconds adds).
  On the remote they could only let a tenant's pod onto nodes the remote
  operator tainted to keep tenants off (a key-less ``Exists`` toleration
  tolerates everything). The remote's own DefaultTolerationSeconds admission
  adds the not-ready/unreachable tolerations it needs.
* serviceAccountName: the remote namespace has no such account; the remote
  pod gets ``automountServiceAccountToken: false`` so the remote's token is
  never mounted; the local token is mounted instead (``serviceaccount``).
* readinessGates: only the local cluster sets those conditions; see
  ``status.local_status`` for how they still gate local readiness.
* ephemeralContainers: the API server refuses them on create; they are
  added afterwards through the ``ephemeralcontainers`` subresource, as
  ``kubectl debug`` adds them locally (``new_ephemeral_containers``).
"""

import json
from typing import Any

from ak.core import serviceaccount, tenant_placement
from ak.core.codec import clone
from ak.core.labels import (
    AK_POD_ANNOTATIONS,
    AK_POD_LABELS,
    ANNOTATION_LOCAL_UID,
    ANNOTATION_PROPAGATED_KEYS,
    ownership_labels,
)
from ak.core.names import node_label_value
from ak.core.placement import NONE as NO_PLACEMENT
from ak.core.placement import Placement
from ak.core.pod_checks import check_supported
from ak.core.pod_env import pinned_fields, with_env
from ak.core.storage import rewrite_ephemeral
from ak.core.types import Obj

_COPIED_SPEC_FIELDS = (
    "activeDeadlineSeconds",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "hostAliases",
    "hostUsers",
    "hostname",
    "hostnameOverride",
    "imagePullSecrets",
    "os",
    "resources",
    "restartPolicy",
    "securityContext",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "subdomain",
    "terminationGracePeriodSeconds",
)
_CONTAINER_LISTS = ("initContainers", "containers")


def rewrite_volumes(volumes: list[Obj], local: Obj) -> list[Obj]:
    """The volumes of ``local`` as the remote pod has them (a deep copy).

    The service-account token, ``kube-root-ca.crt`` and downward-API fields
    that differ remotely are read from objects AK keeps in the remote
    namespace; see ``serviceaccount``.
    """
    return serviceaccount.rewrite_volumes(volumes, local)


def propagated_keys(labels: dict[str, str], annotations: dict[str, str]) -> str:
    keys = {
        "annotations": sorted(k for k in annotations if k not in AK_POD_ANNOTATIONS),
        "labels": sorted(k for k in labels if k not in AK_POD_LABELS),
    }
    return json.dumps(keys, separators=(",", ":"), sort_keys=True)


def _remote_metadata(local: Obj, node_name: str, remote_namespace: str) -> Obj:
    metadata: dict[str, Any] = local["metadata"]
    local_labels: dict[str, str] = metadata.get("labels") or {}
    local_annotations: dict[str, str] = metadata.get("annotations") or {}
    ours = ownership_labels(node_label_value(node_name), metadata["namespace"])
    # AK's own keys are AK's: a local pod's label cannot make the default
    # isolation policy step aside for it (LABEL_INGRESS_COVERED).
    labels = {**{k: v for k, v in local_labels.items() if k not in AK_POD_LABELS}, **ours}
    annotations = {
        **local_annotations,
        ANNOTATION_LOCAL_UID: metadata["uid"],
        ANNOTATION_PROPAGATED_KEYS: propagated_keys(local_labels, local_annotations),
    }
    return {
        "name": metadata["name"],
        "namespace": remote_namespace,
        "labels": labels,
        "annotations": annotations,
    }


def _remote_spec(
    local: Obj, extra_env: list[Obj], placement: Placement, requested: bool, storage: bool
) -> Obj:
    spec: dict[str, Any] = local.get("spec") or {}
    pinned = pinned_fields(local)
    remote = {f: clone(spec[f]) for f in _COPIED_SPEC_FIELDS if f in spec}
    for field in _CONTAINER_LISTS:
        if spec.get(field):
            remote[field] = [with_env(c, extra_env, pinned) for c in spec[field]]
    if spec.get("volumes"):
        remote["volumes"] = rewrite_volumes(spec["volumes"], local)
        if storage:
            remote["volumes"] = rewrite_ephemeral(remote["volumes"], local["metadata"]["name"])
    remote["automountServiceAccountToken"] = False
    placement.apply(remote)
    request = tenant_placement.requested(local) if requested else None
    if request is not None:
        tenant_placement.merge(remote, request, placement.allowed, placement.node_selector)
    return remote


def to_remote_pod(
    local: Obj,
    *,
    node_name: str,
    remote_namespace: str,
    extra_env: list[Obj],
    placement: Placement = NO_PLACEMENT,
    requested_placement: bool = True,
    storage: bool = False,
) -> Obj:
    """The pod to create remotely; raises ``TranslationError`` if impossible.

    ``requested_placement=False`` leaves out the pod's own placement request
    (``ak.core.tenant_placement``): for updates, which never touch scheduling
    fields, so a request the operator's allow-list no longer admits (changed
    since the pod was made) does not stop labels and images propagating.
    ``storage``: claims are provisioned remotely under their local names
    (``ak.core.storage``)."""
    check_supported(local, storage=storage)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _remote_metadata(local, node_name, remote_namespace),
        "spec": _remote_spec(local, extra_env, placement, requested_placement, storage),
    }


def new_ephemeral_containers(local: Obj, remote: Obj, extra_env: list[Obj]) -> list[Obj]:
    """The local pod's ephemeral containers the remote pod lacks, translated.

    Ephemeral containers can only be added, never changed or removed, so
    those the remote already has (by name) are left as they are. One the
    local status shows terminated without the remote having it was refused
    there (``status.with_refused_ephemeral``): it has ended for good, as a
    kubelet never starts an ephemeral container twice, and an AK restarted
    since does not ask again.
    """
    have = {c.get("name") for c in (remote.get("spec") or {}).get("ephemeralContainers") or []}
    for entry in (local.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if "terminated" in (entry.get("state") or {}):
            have.add(entry.get("name"))
    wanted: list[Obj] = (local.get("spec") or {}).get("ephemeralContainers") or []
    missing = [c for c in wanted if c.get("name") not in have]
    if not missing:
        return []
    pinned = pinned_fields(local)
    return [with_env(c, extra_env, pinned) for c in missing]


def _previous_keys(annotations: dict[str, str], kind: str) -> set[str]:
    # Without the record (seed-made pod, or mangled by hand) nothing is
    # known to be ours, so nothing is removed.
    try:
        keys = json.loads(annotations.get(ANNOTATION_PROPAGATED_KEYS, "{}"))
        return {k for k in keys.get(kind, []) if isinstance(k, str)}
    except (ValueError, AttributeError):
        return set()


def _map_patch(
    current: dict[str, str], desired: dict[str, str], previous: set[str], owned: frozenset[str]
) -> dict[str, str | None]:
    patch: dict[str, str | None] = {
        k: v for k, v in desired.items() if k not in owned and current.get(k) != v
    }
    for key in previous - desired.keys() - owned:
        if key in current:
            patch[key] = None
    return patch


def _metadata_patch(current: Obj, desired: Obj) -> Obj:
    cur_labels: dict[str, str] = current.get("labels") or {}
    cur_annotations: dict[str, str] = current.get("annotations") or {}
    want_annotations: dict[str, str] = desired.get("annotations") or {}
    labels = _map_patch(
        cur_labels,
        desired.get("labels") or {},
        _previous_keys(cur_annotations, "labels"),
        AK_POD_LABELS,
    )
    annotations = _map_patch(
        cur_annotations,
        want_annotations,
        _previous_keys(cur_annotations, "annotations"),
        AK_POD_ANNOTATIONS,
    )
    record = want_annotations.get(ANNOTATION_PROPAGATED_KEYS)
    if record is not None and record != cur_annotations.get(ANNOTATION_PROPAGATED_KEYS):
        annotations[ANNOTATION_PROPAGATED_KEYS] = record
    patch: Obj = {}
    if labels:
        patch["labels"] = labels
    if annotations:
        patch["annotations"] = annotations
    return patch


def _images_patch(current: list[Obj], desired: list[Obj]) -> list[Obj] | None:
    # A merge patch replaces lists whole, so send the remote's own list (with
    # its defaulted fields) and only the images changed: the API server then
    # sees an image-only update, the one kind of container change it allows.
    images = {c["name"]: c.get("image") for c in desired}
    if all(images.get(c["name"], c.get("image")) == c.get("image") for c in current):
        return None
    updated = clone(current)
    for container in updated:
        container["image"] = images.get(container["name"], container.get("image"))
    return updated


def _spec_patch(current: Obj, desired: Obj) -> Obj:
    patch: Obj = {}
    for field in _CONTAINER_LISTS:
        images = _images_patch(current.get(field) or [], desired.get(field) or [])
        if images is not None:
            patch[field] = images
    # The API server only lets activeDeadlineSeconds be set or lowered, never
    # removed, so a removal on the local side is not propagated.
    deadline = desired.get("activeDeadlineSeconds")
    if deadline is not None and deadline != current.get("activeDeadlineSeconds"):
        patch["activeDeadlineSeconds"] = deadline
    return patch


def remote_pod_patch(local: Obj, remote: Obj, desired: Obj) -> Obj | None:
    """JSON merge patch bringing ``remote`` in line with ``desired``.

    ``desired`` is ``to_remote_pod(local, ...)``. Only what Kubernetes lets
    change on a running pod is propagated: labels, annotations, container
    and init container images, activeDeadlineSeconds. AK's own labels and
    annotations are never touched (only the propagated-keys record). Whether
    ``remote`` runs for ``local`` at all is ``incarnation``'s to decide, first.
    """
    patch: Obj = {}
    metadata = _metadata_patch(remote.get("metadata") or {}, desired.get("metadata") or {})
    if metadata:
        patch["metadata"] = metadata
    spec = _spec_patch(remote.get("spec") or {}, desired.get("spec") or {})
    if spec:
        patch["spec"] = spec
    return patch or None
