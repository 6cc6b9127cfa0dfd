"""Which Secrets and ConfigMaps a pod needs remotely, and their copies.

Discovery covers every place a kubelet would read one from: volumes
(secret, configMap, projected sources, and the ``secretRef`` of volume
plugins that take credentials), ``env[].valueFrom``, ``envFrom`` and
``imagePullSecrets`` of containers and init containers.

Deliberately NOT dependencies:

* Ephemeral containers: AK does not copy them to the remote pod, and
  copying Secrets to another cluster that nothing there reads only widens
  their exposure.
* ``kube-root-ca.crt``, wherever it is referenced: the remote cluster
  publishes its own ConfigMap of that name into every namespace (a copy would
  fight its publisher), and the remote pod reads AK's replica of the LOCAL CA
  instead (``ak/core/root_ca.py``, kept current by ``ak/tokens``).

Optionality: a dependency is optional only if every reference to it is. A
missing required dependency keeps the pod from starting, so AK must wait for
it; a missing optional one is simply skipped. ``imagePullSecrets`` count as
optional because the kubelet pulls without a missing pull secret.
"""

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ak.core.labels import (
    ANNOTATION_SOURCE_RESOURCE_VERSION,
    ANNOTATION_SOURCE_TYPE,
    ANNOTATION_SOURCE_UID,
    LABEL_LOCAL_ROOT_CA,
    LABEL_NAMESPACE,
    LABEL_NODE,
    LABEL_POD_IDENTITY,
    LABEL_REPLICA,
    REPLICA_VALUE,
    SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
    SECRET_TYPE_SERVICE_ACCOUNT_TOKEN_REPLICA,
    ownership_labels,
)
from ak.core.names import node_label_value
from ak.core.types import Obj

Kind = Literal["Secret", "ConfigMap"]
KUBE_ROOT_CA = "kube-root-ca.crt"


@dataclass(frozen=True, order=True)
class Ref:
    """A Secret or ConfigMap in the pod's namespace.

    Equality and hashing use kind and name only: ``pod_dependencies`` never
    returns two Refs to the same object with different ``optional``.
    """

    kind: Kind
    name: str
    optional: bool = field(default=False, compare=False)


_Raw = tuple[Kind, str, bool]

# Inline volume plugins that read credentials from a Secret in the pod's
# namespace; the key holding the reference differs per plugin.
_PLUGIN_SECRETS = {
    "csi": "nodePublishSecretRef",
    "cephfs": "secretRef",
    "flexVolume": "secretRef",
    "iscsi": "secretRef",
    "rbd": "secretRef",
    "scaleIO": "secretRef",
    "storageos": "secretRef",
}


def _projected_refs(projected: Obj) -> Iterator[_Raw]:
    sources: list[Obj] = projected.get("sources") or []
    for source in sources:
        if secret := source.get("secret"):
            yield "Secret", secret.get("name", ""), bool(secret.get("optional"))
        if config_map := source.get("configMap"):
            yield "ConfigMap", config_map.get("name", ""), bool(config_map.get("optional"))


def _volume_refs(volume: Obj) -> Iterator[_Raw]:
    if secret := volume.get("secret"):
        yield "Secret", secret.get("secretName", ""), bool(secret.get("optional"))
    if config_map := volume.get("configMap"):
        yield "ConfigMap", config_map.get("name", ""), bool(config_map.get("optional"))
    if projected := volume.get("projected"):
        yield from _projected_refs(projected)
    for plugin, ref_key in _PLUGIN_SECRETS.items():
        if ref := (volume.get(plugin) or {}).get(ref_key):
            yield "Secret", ref.get("name", ""), False
    if azure_file := volume.get("azureFile"):
        yield "Secret", azure_file.get("secretName", ""), False


def _container_refs(container: Obj) -> Iterator[_Raw]:
    for var in container.get("env") or []:
        value_from: dict[str, Any] = var.get("valueFrom") or {}
        if ref := value_from.get("secretKeyRef"):
            yield "Secret", ref.get("name", ""), bool(ref.get("optional"))
        if ref := value_from.get("configMapKeyRef"):
            yield "ConfigMap", ref.get("name", ""), bool(ref.get("optional"))
    for source in container.get("envFrom") or []:
        if ref := source.get("secretRef"):
            yield "Secret", ref.get("name", ""), bool(ref.get("optional"))
        if ref := source.get("configMapRef"):
            yield "ConfigMap", ref.get("name", ""), bool(ref.get("optional"))


def _pod_refs(spec: Obj) -> Iterator[_Raw]:
    for volume in spec.get("volumes") or []:
        yield from _volume_refs(volume)
    for containers in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(containers) or []:
            yield from _container_refs(container)
    for secret in spec.get("imagePullSecrets") or []:
        yield "Secret", secret.get("name", ""), True


def pod_dependencies(pod: Obj) -> list[Ref]:
    """The pod's Secret/ConfigMap dependencies, sorted by kind and name."""
    optional: dict[tuple[Kind, str], bool] = {}
    for kind, name, is_optional in _pod_refs(pod.get("spec") or {}):
        if name and not (kind == "ConfigMap" and name == KUBE_ROOT_CA):
            optional[kind, name] = optional.get((kind, name), True) and is_optional
    return sorted(Ref(kind, name, opt) for (kind, name), opt in optional.items())


def _secret_type(obj: Obj) -> str:
    return str(obj.get("type") or "Opaque")


def _replica_type(source_type: str) -> str:
    # A copied service-account-token Secret would be seen by the REMOTE token
    # controller, which deletes it (its account does not exist there) or
    # fills it with a remote token. Its contents are replicated under a type
    # no controller watches; the token issue decides what pods mount.
    if source_type == SECRET_TYPE_SERVICE_ACCOUNT_TOKEN:
        return SECRET_TYPE_SERVICE_ACCOUNT_TOKEN_REPLICA
    return source_type


def _secret_data(obj: Obj) -> dict[str, str]:
    # stringData is write-only (never returned by GET) but fold it in as the
    # API server would, so desired and current copies compare equal.
    data: dict[str, str] = dict(obj.get("data") or {})
    for key, value in (obj.get("stringData") or {}).items():
        data[key] = base64.b64encode(value.encode()).decode()
    return data


def _copy_metadata(obj: Obj, node_name: str, local_namespace: str, remote_ns: str) -> Obj:
    metadata: dict[str, Any] = obj["metadata"]
    labels = {
        **(metadata.get("labels") or {}),
        **ownership_labels(node_label_value(node_name), local_namespace),
        LABEL_REPLICA: REPLICA_VALUE,
    }
    annotations = {
        ANNOTATION_SOURCE_UID: metadata.get("uid", ""),
        ANNOTATION_SOURCE_RESOURCE_VERSION: metadata.get("resourceVersion", ""),
    }
    return {
        "name": metadata["name"],
        "namespace": remote_ns,
        "labels": labels,
        "annotations": annotations,
    }


def to_remote_copy(
    obj: Obj,
    *,
    node_name: str,
    local_namespace: str,
    remote_namespace: str,
    kind: Kind | None = None,
) -> Obj:
    """The remote replica of a local Secret or ConfigMap.

    ``kind`` is needed for items of a LIST response, which carry no ``kind``.
    Source annotations are not copied: nothing remote reads them, and
    ``last-applied-configuration`` would duplicate the data.
    """
    kind = kind or obj.get("kind")
    if kind not in ("Secret", "ConfigMap"):
        raise ValueError(f"cannot replicate kind {kind!r}")
    replica: Obj = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": _copy_metadata(obj, node_name, local_namespace, remote_namespace),
    }
    data = _secret_data(obj) if kind == "Secret" else dict(obj.get("data") or {})
    if data:
        replica["data"] = data
    if obj.get("binaryData"):
        replica["binaryData"] = dict(obj["binaryData"])
    if kind == "Secret":
        source_type = _secret_type(obj)
        replica["type"] = _replica_type(source_type)
        if replica["type"] != source_type:
            replica["metadata"]["annotations"][ANNOTATION_SOURCE_TYPE] = source_type
    if obj.get("immutable"):
        replica["immutable"] = True
    return replica


def _content(obj: Obj) -> Obj:
    return {
        "data": obj.get("data") or {},
        "binaryData": obj.get("binaryData") or {},
        "type": obj.get("type") or ("Opaque" if obj.get("kind") == "Secret" else None),
        "immutable": bool(obj.get("immutable")),
    }


def copy_needs_update(desired: Obj, current: Obj) -> bool:
    """Whether ``current`` (the remote replica) differs from ``desired``.

    Labels must match exactly (they are AK's); annotations only need to
    contain AK's, so remote tooling may annotate replicas without causing an
    update loop.
    """
    want_meta: dict[str, Any] = desired.get("metadata") or {}
    have_meta: dict[str, Any] = current.get("metadata") or {}
    if (want_meta.get("labels") or {}) != (have_meta.get("labels") or {}):
        return True
    have_annotations = have_meta.get("annotations") or {}
    for key, value in (want_meta.get("annotations") or {}).items():
        if have_annotations.get(key) != value:
            return True
    current_content = _content({"kind": desired.get("kind"), **current})
    return _content(desired) != current_content


def copy_needs_replace(desired: Obj, current: Obj) -> bool:
    """Whether the update must be a delete + create: the API server forbids
    changing an immutable object's content, or a Secret's type, in place."""
    want = _content(desired)
    have = _content({"kind": desired.get("kind"), **current})
    if want["type"] != have["type"]:
        return True
    return have["immutable"] and want != have


def is_own_copy(obj: Obj, node_label: str, local_namespace: str) -> bool:
    """Whether an existing remote object is a Secret/ConfigMap copy AK may manage.

    True for AK's copies and for the original AK's, which carry only the
    node and namespace labels (a user migrating keeps them, see
    ``core/incarnation.py``); false for anything a remote user made, and for
    AK's per-pod identity Secrets and local CA ConfigMaps, which are not copies.
    """
    labels: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    if LABEL_POD_IDENTITY in labels or LABEL_LOCAL_ROOT_CA in labels:
        return False
    return labels.get(LABEL_NODE) == node_label and labels.get(LABEL_NAMESPACE) == local_namespace


def missing_reason(kinds: list[Kind]) -> str:
    """The Event and status reason for required objects that do not exist.

    virtual-kubelet's, which the original AK emitted and users alert on: with
    both kinds missing, the Secret's (the first a kubelet would report).
    """
    return "MandatorySecretNotFound" if "Secret" in kinds else "MandatoryConfigMapNotFound"


def optional_missing_reason(kind: Kind) -> str:
    return "OptionalSecretNotFound" if kind == "Secret" else "OptionalConfigMapNotFound"
