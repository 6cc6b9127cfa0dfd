"""The LOCAL cluster's CA bundle as AK keeps it remotely: its name and its ConfigMap.

Every cluster publishes its own CA as ``kube-root-ca.crt`` into every
namespace (kube-controller-manager's root-ca-cert-publisher). A copy of the
local one under that name would fight the remote publisher, so AK keeps it as
``ROOT_CA_REPLICA`` and renames every reference in the remote pod.
"""

from typing import Any

from ak.core.codec import clone
from ak.core.deps import KUBE_ROOT_CA
from ak.core.labels import (
    ANNOTATION_SOURCE_RESOURCE_VERSION,
    ANNOTATION_SOURCE_UID,
    LABEL_LOCAL_ROOT_CA,
    LOCAL_ROOT_CA_VALUE,
    ownership_labels,
)
from ak.core.names import node_label_value
from ak.core.types import Obj

ROOT_CA_REPLICA = "ak-local-kube-root-ca.crt"

__all__ = [
    "KUBE_ROOT_CA",
    "ROOT_CA_REPLICA",
    "is_root_ca_replica",
    "rewrite_root_ca_ref",
    "root_ca_needs_update",
    "root_ca_replica",
]


def rewrite_root_ca_ref(ref: Obj) -> Obj:
    """A ``configMap`` volume, source, ``configMapKeyRef`` or ``configMapRef`` (a deep
    copy), reading the local CA replica instead of ``kube-root-ca.crt``."""
    result = clone(ref)
    if result.get("name") == KUBE_ROOT_CA:
        result["name"] = ROOT_CA_REPLICA
    return result


def root_ca_replica(
    source: Obj, *, node_name: str, local_namespace: str, remote_namespace: str
) -> Obj:
    """The remote copy of the local ``kube-root-ca.crt`` ConfigMap."""
    meta: dict[str, Any] = source.get("metadata") or {}
    labels = {
        **ownership_labels(node_label_value(node_name), local_namespace),
        LABEL_LOCAL_ROOT_CA: LOCAL_ROOT_CA_VALUE,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ROOT_CA_REPLICA,
            "namespace": remote_namespace,
            "labels": labels,
            "annotations": {
                ANNOTATION_SOURCE_UID: meta.get("uid", ""),
                ANNOTATION_SOURCE_RESOURCE_VERSION: meta.get("resourceVersion", ""),
            },
        },
        "data": dict(source.get("data") or {}),
    }


def is_root_ca_replica(obj: Obj) -> bool:
    labels: dict[str, str] = obj.get("metadata", {}).get("labels") or {}
    return labels.get(LABEL_LOCAL_ROOT_CA) == LOCAL_ROOT_CA_VALUE


def root_ca_needs_update(desired: Obj, current: Obj) -> bool:
    """Content or AK's labels differ (remote tooling may add annotations)."""
    want = desired["metadata"]["labels"]
    have = current.get("metadata", {}).get("labels") or {}
    return want != have or (desired.get("data") or {}) != (current.get("data") or {})
