"""Every label, annotation and marker value AK writes.

Keeping them in one place makes it easy to see what AK owns on the remote
cluster: anything carrying ``LABEL_MANAGED_BY=MANAGED_BY_VALUE`` and the
node label was made by AK and may be changed or deleted by it; nothing else.
"""

from typing import Final

PREFIX: Final = "actual.vk/"

LABEL_NODE: Final = "actual.vk/node-name"
"""Which AK node (local cluster) a remote object belongs to; value from
``names.node_label_value``."""

LABEL_NAMESPACE: Final = "actual.vk/namespace"
"""The local namespace a remote object mirrors (verbatim: a namespace name is
always a valid label value)."""

LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "actual-kubelets"

LABEL_REPLICA: Final = "actual.vk/replica"
"""Marks Secrets/ConfigMaps AK copied, so AK never updates or garbage-collects
an object a remote user created under the same name."""
REPLICA_VALUE: Final = "true"

ANNOTATION_LOCAL_UID: Final = "actual.vk/local-uid"
"""UID of the local pod a remote pod runs for: tells incarnations of a pod
with the same name apart."""

ANNOTATION_PROPAGATED_KEYS: Final = "actual.vk/propagated-keys"
"""JSON list of the label and annotation keys AK copied from the local pod.
Only these may be removed again; keys added on the remote side (CNI plugins,
admission webhooks) are left alone."""

ANNOTATION_SOURCE_UID: Final = "actual.vk/source-uid"
ANNOTATION_SOURCE_RESOURCE_VERSION: Final = "actual.vk/source-resource-version"
ANNOTATION_SOURCE_TYPE: Final = "actual.vk/source-type"
"""Original ``type`` of a replicated Secret whose type AK had to change."""

SECRET_TYPE_SERVICE_ACCOUNT_TOKEN: Final = "kubernetes.io/service-account-token"
SECRET_TYPE_SERVICE_ACCOUNT_TOKEN_REPLICA: Final = "actual.vk/service-account-token"

TAINT_KEY: Final = "virtual-kubelet.io/provider"
TAINT_VALUE: Final = "actual-kubelets"
TAINT_EFFECT: Final = "NoSchedule"

AK_POD_LABELS: Final = frozenset({LABEL_NODE, LABEL_NAMESPACE, LABEL_MANAGED_BY})
AK_POD_ANNOTATIONS: Final = frozenset({ANNOTATION_LOCAL_UID, ANNOTATION_PROPAGATED_KEYS})


def ownership_labels(node_label: str, local_namespace: str) -> dict[str, str]:
    """Labels that tie a remote object to one AK node and local namespace."""
    return {
        LABEL_NODE: node_label,
        LABEL_NAMESPACE: local_namespace,
        LABEL_MANAGED_BY: MANAGED_BY_VALUE,
    }
