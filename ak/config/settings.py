"""What a resolved configuration is: one frozen dataclass per section of the file.

The dataclass defaults are the built-in defaults (``builtin_default`` reads
them), so a default is written down once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from ak.core.netpol import DEFAULT_DNS_PEERS

DEFAULT_RESOURCES: Mapping[str, str] = {"cpu": "100", "memory": "512Gi", "pods": "1000"}


@dataclass(frozen=True)
class ClusterSettings:
    """How to reach one API server. ``kubeconfig`` None means in-cluster config."""

    kubeconfig: str | None = None
    context: str | None = None
    qps: float = 50.0  # client-side rate limit; 0 disables it
    burst: int = 100


@dataclass(frozen=True)
class LocalSettings(ClusterSettings):
    """The cluster AK joins as a node.

    ``apiserver_host``/``apiserver_port`` are what remote pods are told to use
    (``KUBERNETES_SERVICE_HOST``/``_PORT``) to reach the LOCAL API server; None
    lets the caller derive it from the local kubeconfig.
    """

    apiserver_host: str | None = None
    apiserver_port: int = 443  # with no apiserver_host and not set: the kubeconfig's port


@dataclass(frozen=True)
class RemoteSettings(ClusterSettings):
    """The cluster the pods actually run on; it carries every node's load."""

    qps: float = 100.0
    burst: int = 200


@dataclass(frozen=True)
class NodeSettings:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taint: bool = False  # seed default: no virtual-kubelet NoSchedule taint
    internal_ip: str | None = None  # None => the caller derives one
    kubelet_port: int = 10250
    capacity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    allocatable: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    # Capacity from the remote cluster instead: allocatable of its Ready nodes
    # (optionally only those matching the selector) minus other tenants' requests,
    # times the fraction; kept current as the remote cluster changes.
    auto_capacity: bool = False
    auto_capacity_selector: str | None = None
    auto_capacity_fraction: float = 1.0


@dataclass(frozen=True)
class PodSettings:
    env: tuple[tuple[str, str], ...] = ()  # (name, value) injected into every container
    # [pods.placement]: added to every remote pod (see ak/core/placement.py).
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    runtime_class_name: str | None = None
    # [pods.placement.allowed]: what a pod's own remote-placement request may
    # target (ak/core/tenant_placement.py); empty: no per-pod placement.
    allowed_node_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    allowed_tolerations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    workers: int = 16  # pods synced concurrently
    # Local addresses for pods, so the local cluster reaches them through AK
    # (ak/core/pod_addresses.py); None: pods show their remote IPs.
    address_range: str | None = None
    # Service-account tokens are refreshed at 80 % of their lifetime or once this
    # old (seconds), whichever comes first: the kubelet's 24 h.
    token_max_age: int = 86400
    # The local NetworkPolicies selecting the node's pods are copied to their
    # remote namespaces, and their ingress rules enforced at the pod addresses.
    network_policies: bool = True
    # [storage]: claims of AK's local StorageClasses are provisioned on the remote
    # cluster (ak/core/storage.py); remote_classes is the operator's allow-list of
    # remote StorageClasses (empty: every one).
    storage: bool = True
    storage_remote_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class KubeletSettings:
    """TLS of the kubelet API port (logs, exec, attach, port-forward, stats).

    Without ``tls_cert_file``/``tls_private_key_file`` AK asks the local
    cluster for a serving certificate (a kubernetes.io/kubelet-serving CSR,
    which someone must approve) and keeps it in ``cert_dir`` if set.
    ``client_ca_file`` None means the CA of the local kubeconfig.
    """

    tls_cert_file: str | None = None
    tls_private_key_file: str | None = None
    client_ca_file: str | None = None
    cert_dir: str | None = None


DEFAULT_NAMESPACE_LABELS: Mapping[str, str] = {"pod-security.kubernetes.io/enforce": "baseline"}


@dataclass(frozen=True)
class NamespaceSettings:
    """Applied to every remote namespace AK creates, and kept in step.

    The default enforces the ``baseline`` Pod Security Standard, so a pod from
    the local cluster cannot run privileged on the shared remote one; setting
    ``labels`` replaces that default. ``quota`` is a ResourceQuota's ``hard``
    map, ``limit_default``/``limit_default_request`` a LimitRange's container
    defaults; empty means none.
    """

    labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_NAMESPACE_LABELS))
    annotations: dict[str, str] = field(default_factory=dict)
    quota: dict[str, str] = field(default_factory=dict)
    limit_default: dict[str, str] = field(default_factory=dict)
    limit_default_request: dict[str, str] = field(default_factory=dict)
    # [namespaces.isolation] (ak/core/netpol.py): a NetworkPolicy in every remote
    # namespace admitting ingress only from the same node's namespaces and the
    # operator's peers (NetworkPolicyPeer tables); the remote DNS the tenant's
    # egress rules admitting port 53 are given.
    isolation: bool = True
    isolation_peers: tuple[dict[str, Any], ...] = ()
    isolation_dns: tuple[dict[str, Any], ...] = DEFAULT_DNS_PEERS


@dataclass(frozen=True)
class Config:
    node: NodeSettings
    local: LocalSettings = field(default_factory=LocalSettings)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    pods: PodSettings = field(default_factory=PodSettings)
    kubelet: KubeletSettings = field(default_factory=KubeletSettings)
    namespaces: NamespaceSettings = field(default_factory=NamespaceSettings)
    # Several replicas for one node: only the holder of the node Lease acts.
    leader_elect: bool = False
    leader_elect_identity: str | None = None  # None: <node>/<hostname>-<random>
    metrics_port: int = 10256  # 0 disables the metrics endpoint
    log_level: str = "info"  # debug | info | warning | error
    log_format: str = "text"  # text | json
    # Setting ("node.kubelet_port") -> where its value came from: "flag --x",
    # "env AK_X", "file PATH [section] key" or "default". Not part of equality:
    # two configs with the same settings are the same config.
    source: dict[str, str] = field(default_factory=dict, compare=False)


_SECTION_CLASSES: dict[str, type[Any]] = {
    "node": NodeSettings,
    "local": LocalSettings,
    "remote": RemoteSettings,
    "pods": PodSettings,
    "kubelet": KubeletSettings,
    "namespaces": NamespaceSettings,
    "": Config,
}


def builtin_default(key: str) -> Any:
    """The built-in default of a setting, read from the dataclasses (one source of truth)."""
    section, _, name = key.rpartition(".")
    for f in fields(_SECTION_CLASSES[section]):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    return MISSING
