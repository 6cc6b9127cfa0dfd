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

LABEL_VOLUME: Final = "actual.vk/volume"
"""Marks a remote PersistentVolumeClaim AK provisioned for a local claim
(``ak/core/storage.py``). Value ``VOLUME_VALUE``. Never carries
``LABEL_REPLICA``: a claim holds data, and no replica clean-up may touch it."""
VOLUME_VALUE: Final = "true"

ANNOTATION_LOCAL_UID: Final = "actual.vk/local-uid"
"""UID of the local pod a remote pod runs for (of the local claim a remote
claim was made for): tells incarnations of the same name apart."""

ANNOTATION_PROPAGATED_KEYS: Final = "actual.vk/propagated-keys"
"""JSON list of the label and annotation keys AK copied from the local pod.
Only these may be removed again; keys added on the remote side (CNI plugins,
admission webhooks) are left alone."""

ANNOTATION_TEMPLATE_KEYS: Final = "actual.vk/template-keys"
"""JSON record of the label and annotation keys the namespace template applied,
so keys dropped from the configuration can be removed again."""

ANNOTATION_SOURCE_UID: Final = "actual.vk/source-uid"
ANNOTATION_SOURCE_RESOURCE_VERSION: Final = "actual.vk/source-resource-version"
ANNOTATION_SOURCE_TYPE: Final = "actual.vk/source-type"
"""Original ``type`` of a replicated Secret whose type AK had to change."""

SECRET_TYPE_SERVICE_ACCOUNT_TOKEN: Final = "kubernetes.io/service-account-token"
SECRET_TYPE_SERVICE_ACCOUNT_TOKEN_REPLICA: Final = "actual.vk/service-account-token"

LABEL_POD_IDENTITY: Final = "actual.vk/pod-identity"
"""Marks the per-pod remote Secret holding a pod's LOCAL identity: its
service-account tokens and the downward-API fields that differ remotely
(namespace, uid). Value ``POD_IDENTITY_VALUE``. Never carries
``LABEL_REPLICA``: it is not a copy of a local object, and the dependency
controller must not garbage-collect it."""
POD_IDENTITY_VALUE: Final = "true"

LABEL_LOCAL_ROOT_CA: Final = "actual.vk/local-root-ca"
"""Marks the remote ConfigMap holding the LOCAL cluster's CA bundle (the
local ``kube-root-ca.crt``) in a remote namespace. Value ``LOCAL_ROOT_CA_VALUE``."""
LOCAL_ROOT_CA_VALUE: Final = "true"

ANNOTATION_POD_NAME: Final = "actual.vk/pod-name"
"""On a pod-identity Secret: the pod it belongs to (a label value could not
hold every pod name)."""

ANNOTATION_TOKENS_ISSUED_AT: Final = "actual.vk/tokens-issued-at"
"""On a pod-identity Secret: when AK requested its tokens (AK's clock, RFC 3339
with microseconds). With ``ANNOTATION_TOKENS_TTL`` it lets a restarted AK
schedule the next refresh without requesting new tokens."""

ANNOTATION_TOKENS_TTL: Final = "actual.vk/tokens-ttl-seconds"
"""On a pod-identity Secret: the shortest lifetime, in seconds, the API server
granted its tokens (``spec.expirationSeconds`` of the TokenRequest answers)."""

ANNOTATION_LOCAL_APISERVER_ENV: Final = "actual.vk/local-apiserver-env"
"""On a local pod: ``"false"`` keeps AK from setting ``KUBERNETES_SERVICE_HOST``,
``KUBERNETES_SERVICE_PORT`` and the ``KUBERNETES_PORT*`` variables to the local
API server; the pod then sees the remote cluster's values. Tokens, CA and
namespace files are still the local ones."""

LABEL_INGRESS_COVERED: Final = "actual.vk/ingress-covered"
"""On a remote pod: one of the tenant's translated NetworkPolicies with Ingress
selects it, so the namespace's default isolation policy steps aside for it
(``ak/core/netpol.py``). Set and removed by AK alone; a local pod's own label
of that key is not copied."""

TAINT_KEY: Final = "virtual-kubelet.io/provider"
TAINT_VALUE: Final = "actual-kubelets"
TAINT_EFFECT: Final = "NoSchedule"

AK_POD_LABELS: Final = frozenset(
    {LABEL_NODE, LABEL_NAMESPACE, LABEL_MANAGED_BY, LABEL_INGRESS_COVERED}
)
AK_POD_ANNOTATIONS: Final = frozenset({ANNOTATION_LOCAL_UID, ANNOTATION_PROPAGATED_KEYS})


def ownership_labels(node_label: str, local_namespace: str) -> dict[str, str]:
    """Labels that tie a remote object to one AK node and local namespace."""
    return {
        LABEL_NODE: node_label,
        LABEL_NAMESPACE: local_namespace,
        LABEL_MANAGED_BY: MANAGED_BY_VALUE,
    }
