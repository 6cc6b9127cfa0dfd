"""What AK calls on each cluster, as SelfSubjectAccessReview asks it.

The Helm chart's ClusterRole and ``packaging/remote-rbac.yaml`` grant exactly
these, and the tests check that they stay in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    """Verbs on one resource, as SelfSubjectAccessReview's resourceAttributes."""

    resource: str
    verbs: tuple[str, ...]
    group: str = ""
    subresource: str = ""
    namespace: str = ""  # "" = all namespaces (or cluster-scoped)
    # "{node}" stands for the node name: the Node authorizer answers for a node's
    # own objects (its Node and Lease, its pods by field selector) only.
    name: str = ""
    field_selector: str = ""
    # Granted to node identities only for objects bound to the node (the Node
    # authorizer's graph): a name-less review is denied, so it is not asked.
    node_graph: bool = False

    @property
    def title(self) -> str:
        name = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        name = f"{name}.{self.group}" if self.group else name
        return f"{name} in {self.namespace}" if self.namespace else name


# What AK does on the LOCAL cluster: its node and lease, the pods bound to it and
# their status, the events it records, the Secrets/ConfigMaps/tokens those pods
# use, the Services that may select them, and what its kubelet API needs.
LOCAL_PERMISSIONS: tuple[Permission, ...] = (
    Permission("nodes", ("get", "create", "patch"), name="{node}"),
    Permission("nodes", ("patch",), subresource="status", name="{node}"),
    Permission(
        "leases",
        ("get", "create", "update", "patch"),
        group="coordination.k8s.io",
        namespace="kube-node-lease",
        name="{node}",
    ),
    Permission("pods", ("list", "watch"), field_selector="spec.nodeName={node}"),
    Permission("pods", ("delete",)),
    Permission("pods", ("patch",), subresource="status"),
    Permission("events", ("create", "patch")),
    Permission("secrets", ("get", "list", "watch"), node_graph=True),
    Permission("configmaps", ("get", "list", "watch"), node_graph=True),
    # Services selecting the node's pods are copied to the remote cluster.
    Permission("services", ("list", "watch")),
    # Tokens of the pods' ServiceAccounts, copied to the remote cluster.
    Permission("serviceaccounts", ("create",), subresource="token", node_graph=True),
    # The kubelet API: its serving certificate (a kubelet-serving CSR), and the
    # API server's calls to it checked by TokenReview and SubjectAccessReview.
    Permission("certificatesigningrequests", ("create", "get"), group="certificates.k8s.io"),
    Permission("tokenreviews", ("create",), group="authentication.k8s.io"),
    Permission("subjectaccessreviews", ("create",), group="authorization.k8s.io"),
)

# Beyond a kubelet: the tenant's NetworkPolicies are copied to the remote cluster
# ([pods] networkPolicies), their namespaceSelectors resolved against the local
# namespaces' labels, and (with a pod address range) their ingress rules enforced
# at the pod addresses, where a peer's address must name the local pod it is.
# A node identity gets them from packaging/local-network-policies.yaml (or the
# Helm chart), the chart's ServiceAccount from its ClusterRole.
LOCAL_NETWORK_POLICY_PERMISSIONS: tuple[Permission, ...] = (
    Permission("networkpolicies", ("list", "watch"), group="networking.k8s.io"),
    Permission("namespaces", ("list", "watch")),
    # The tenant's PodDisruptionBudgets, copied so remote drains respect them.
    Permission("poddisruptionbudgets", ("get", "list", "watch"), group="policy"),
)
LOCAL_PEER_PERMISSIONS: tuple[Permission, ...] = (Permission("pods", ("list", "watch")),)
"""Every local pod's address and labels: only with a pod address range."""

# Beyond a kubelet: claims of AK's StorageClasses provisioned on the remote
# cluster ([storage] enabled): every claim read (to find those the scheduler
# picked the node for), the local volumes written, a resized claim's status,
# and AK's StorageClasses made from the remote ones. A node identity gets them
# from packaging/local-storage.yaml (or the Helm chart).
LOCAL_STORAGE_PERMISSIONS: tuple[Permission, ...] = (
    Permission("persistentvolumeclaims", ("get", "list", "watch")),
    Permission("persistentvolumeclaims", ("patch",), subresource="status"),
    Permission("persistentvolumes", ("get", "list", "watch", "create", "patch", "delete")),
    Permission(
        "storageclasses", ("get", "list", "watch", "create", "patch"), group="storage.k8s.io"
    ),
)
LOCAL_STORAGE_HINT = (
    "grant packaging/local-storage.yaml on the local cluster (the Helm chart does), or set "
    "[storage] enabled = false"
)

LOCAL_NETWORK_POLICY_HINT = (
    "grant packaging/local-network-policies.yaml on the local cluster (the Helm chart "
    "does), or set [pods] networkPolicies = false"
)

# What AK does on the REMOTE cluster: one namespace per local namespace, the pods
# in them, copies of Secrets/ConfigMaps/Services, and the kubelet API's logs, exec,
# attach and port-forward (both verbs: WebSocket upgrades are GETs that newer
# API servers also authorize as create).
REMOTE_PERMISSIONS: tuple[Permission, ...] = (
    Permission("namespaces", ("get", "list", "watch", "create", "patch", "delete")),
    Permission("pods", ("get", "list", "watch", "create", "patch", "delete")),
    Permission("pods", ("get",), subresource="log"),
    # `kubectl debug` on a local pod adds its ephemeral container remotely.
    Permission("pods", ("patch",), subresource="ephemeralcontainers"),
    # An in-place resize of a local pod resizes its twin.
    Permission("pods", ("patch",), subresource="resize"),
    Permission("pods", ("get", "create"), subresource="exec"),
    Permission("pods", ("get", "create"), subresource="attach"),
    Permission("pods", ("get", "create"), subresource="portforward"),
    Permission("secrets", ("get", "list", "watch", "create", "update", "delete")),
    Permission("configmaps", ("get", "list", "watch", "create", "update", "delete")),
    Permission("services", ("get", "list", "watch", "create", "update", "delete")),
    Permission("events", ("get", "list", "watch")),
    # The namespace template's quota and limits; the quotas are watched so the
    # node never advertises more than they allow.
    Permission("resourcequotas", ("get", "list", "watch", "create", "update", "delete")),
    Permission("limitranges", ("get", "create", "update", "delete")),
    # The default isolation policies, the tenant's policies copied, and the label
    # that makes the default step aside for the pods those select.
    Permission(
        "networkpolicies",
        ("get", "list", "watch", "create", "update", "delete"),
        group="networking.k8s.io",
    ),
    # The tenant's PodDisruptionBudgets, as absolute copies.
    Permission(
        "poddisruptionbudgets",
        ("get", "list", "watch", "create", "update", "delete"),
        group="policy",
    ),
    # Capacity "auto" sums the remote nodes' allocatable.
    Permission("nodes", ("get", "list", "watch")),
)

# With storage on: the claims AK provisions in its namespaces, and the remote
# StorageClasses it maps local ones to.
REMOTE_STORAGE_PERMISSIONS: tuple[Permission, ...] = (
    Permission("persistentvolumeclaims", ("get", "list", "watch", "create", "patch", "delete")),
    Permission("storageclasses", ("get", "list", "watch"), group="storage.k8s.io"),
)

REMOTE_RBAC_HINT = (
    "apply packaging/remote-rbac.yaml on the remote cluster and use its ServiceAccount's "
    "kubeconfig (see packaging/REMOTE-ACCESS.md)"
)
