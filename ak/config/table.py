"""The settings table: every setting's key, check, flag, environment variable
and file keys, in one place, and what is derived from it for ``--help`` and
``ak config``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ak.config.settings import Config
from ak.config.validators import (
    _address_range,
    _allow_list,
    _annotations,
    _boolean,
    _choice,
    _env,
    _fraction,
    _host,
    _ip,
    _labels,
    _names,
    _node_labels,
    _node_name,
    _optional,
    _peers,
    _port,
    _port_or_zero,
    _positive,
    _rate,
    _resources,
    _runtime_class,
    _token_max_age,
    _tolerations,
)


@dataclass(frozen=True)
class Setting:
    """One field of Config and every way to set it.

    ``key`` is the field's dotted path in Config; ``files`` the dotted paths
    (snake_case) accepted in the TOML file. A setting without a flag is
    file-only (maps); ``env`` is derived from the flag so the scheme stays
    uniform.
    """

    key: str
    convert: Callable[[object], Any]
    flag: str | None
    help: str
    files: tuple[str, ...] = ()

    @property
    def env(self) -> str | None:
        return "AK_" + self.flag[2:].upper().replace("-", "_") if self.flag else None

    @property
    def dest(self) -> str | None:
        """The argparse attribute name for the flag."""
        return self.flag[2:].replace("-", "_") if self.flag else None

    @property
    def file_paths(self) -> tuple[str, ...]:
        return self.files or (self.key,)

    @property
    def is_bool(self) -> bool:
        return self.convert is _boolean


SETTINGS: tuple[Setting, ...] = (
    Setting("node.name", _node_name, "--node-name", "name of the node in the local cluster",
            ("node_name", "node.name")),
    Setting("node.labels", _node_labels, None, "extra node labels"),
    Setting("node.taint", _boolean, "--taint",
            "taint the node so that only pods tolerating it are scheduled there"),
    Setting("node.internal_ip", _ip, "--internal-ip", "node InternalIP address"),
    Setting("node.kubelet_port", _port, "--kubelet-port", "port of the kubelet API (logs, exec)"),
    Setting("node.capacity", _resources, None, "node capacity",
            ("node.resources.capacity",)),
    Setting("node.allocatable", _resources, None, "node allocatable resources",
            ("node.resources.allocatable",)),
    Setting("node.auto_capacity", _boolean, "--auto-capacity",
            "advertise what the remote cluster has free instead of static resources",
            ("node.resources.auto",)),
    Setting("node.auto_capacity_selector", _optional, "--auto-capacity-selector",
            "label selector of the remote nodes counted by --auto-capacity",
            ("node.resources.selector",)),
    Setting("node.auto_capacity_fraction", _fraction, "--auto-capacity-fraction",
            "share of the remote cluster's free resources this node advertises (0-1]",
            ("node.resources.fraction",)),
    Setting("local.kubeconfig", _optional, "--local-kubeconfig",
            "kubeconfig of the local cluster (empty: in-cluster config)"),
    Setting("local.context", _optional, "--local-context", "context in the local kubeconfig"),
    Setting("local.qps", _rate, "--local-qps", "request rate limit for the local cluster"),
    Setting("local.burst", _positive, "--local-burst", "request burst for the local cluster"),
    Setting("local.apiserver_host", _host, "--local-apiserver-host",
            "local API server host that remote pods connect to"),
    Setting("local.apiserver_port", _port, "--local-apiserver-port",
            "local API server port that remote pods connect to"),
    Setting("remote.kubeconfig", _optional, "--remote-kubeconfig",
            "kubeconfig of the remote cluster (empty: in-cluster config)"),
    Setting("remote.context", _optional, "--remote-context", "context in the remote kubeconfig"),
    Setting("remote.qps", _rate, "--remote-qps", "request rate limit for the remote cluster"),
    Setting("remote.burst", _positive, "--remote-burst", "request burst for the remote cluster"),
    Setting("pods.env", _env, None, "environment variables injected into every container"),
    Setting("pods.node_selector", _labels, None, "node selector added to every remote pod",
            ("pods.placement.node_selector",)),
    Setting("pods.tolerations", _tolerations, None, "tolerations added to every remote pod",
            ("pods.placement.tolerations",)),
    Setting("pods.runtime_class_name", _runtime_class, "--remote-runtime-class",
            "runtime class of every remote pod", ("pods.placement.runtime_class_name",)),
    Setting("pods.allowed_node_labels", _allow_list, None,
            "remote node labels (key = [values], [] any) a pod may target with its "
            "actual.vk/remote-placement annotation", ("pods.placement.allowed.node_labels",)),
    Setting("pods.allowed_tolerations", _allow_list, None,
            "remote taints (key = [values], [] any) a pod may tolerate with its "
            "actual.vk/remote-placement annotation", ("pods.placement.allowed.tolerations",)),
    Setting("pods.workers", _positive, "--pod-workers", "pods synced concurrently"),
    Setting("pods.address_range", _address_range, "--pod-address-range",
            "CIDR of local pod addresses AK listens on, so the local cluster reaches "
            "pods on the AK node (unset: pods show their remote IPs)"),
    Setting("pods.token_max_age", _token_max_age, "--token-max-age",
            "refresh service-account tokens at least this often, in seconds"),
    Setting("kubelet.tls_cert_file", _optional, "--tls-cert-file",
            "kubelet API serving certificate (PEM); unset: request one with a CSR"),
    Setting("kubelet.tls_private_key_file", _optional, "--tls-private-key-file",
            "key of --tls-cert-file"),
    Setting("kubelet.client_ca_file", _optional, "--client-ca-file",
            "CA that kubelet API client certificates must chain to (default: the local "
            "kubeconfig's CA)"),
    Setting("kubelet.cert_dir", _optional, "--cert-dir",
            "directory keeping the CSR-issued serving certificate across restarts"),
    Setting("namespaces.labels", _labels, None, "labels of every remote namespace"),
    Setting("namespaces.annotations", _annotations, None, "annotations of every remote namespace"),
    Setting("namespaces.quota", _resources, None, "ResourceQuota hard limits per remote namespace",
            ("namespaces.resource_quota.hard",)),
    Setting("namespaces.limit_default", _resources, None,
            "LimitRange container default limits per remote namespace",
            ("namespaces.limit_range.default",)),
    Setting("namespaces.limit_default_request", _resources, None,
            "LimitRange container default requests per remote namespace",
            ("namespaces.limit_range.default_request",)),
    Setting("namespaces.isolation", _boolean, "--namespace-isolation",
            "a NetworkPolicy in every remote namespace admitting ingress only from the "
            "node's own remote namespaces and the operator's peers",
            ("namespaces.isolation.enabled",)),
    Setting("namespaces.isolation_peers", _peers, None,
            "NetworkPolicy peers every remote pod admits ingress from (ingress controller, "
            "monitoring)", ("namespaces.isolation.ingress_from",)),
    Setting("namespaces.isolation_dns", _peers, None,
            "NetworkPolicy peers of the remote DNS, admitted where a tenant's egress admits DNS",
            ("namespaces.isolation.dns",)),
    Setting("pods.network_policies", _boolean, "--network-policies",
            "copy the local NetworkPolicies selecting the node's pods to the remote cluster and "
            "enforce their ingress rules at the pod addresses"),
    Setting("pods.storage", _boolean, "--storage",
            "provision the claims of AK's local StorageClasses on the remote cluster's storage",
            ("storage.enabled",)),
    Setting("pods.storage_remote_classes", _names, None,
            "remote StorageClasses claims may be provisioned in (empty: every one)",
            ("storage.remote_classes",)),
    Setting("leader_elect", _boolean, "--leader-elect",
            "run as one of several replicas of the node; only the leader acts"),
    Setting("leader_elect_identity", _optional, "--leader-elect-identity",
            "this replica's name in the node Lease (default: <node>/<hostname>-<random>)"),
    Setting("metrics_port", _port_or_zero, "--metrics-port", "metrics port (0 disables)"),
    Setting("log_level", _choice("debug", "info", "warning", "error", aliases={"warn": "warning"}),
            "--log-level", "debug, info, warning or error"),
    Setting("log_format", _choice("text", "json"), "--log-format", "text or json"),
)  # fmt: skip

CONFIG_FLAG = "--config"
CONFIG_ENV = "AK_CONFIG"


def precedence_doc() -> str:
    """Where settings come from, for ``--help`` and ``ak config``."""
    rows = [("setting", "flag", "environment", "file"), ("", CONFIG_FLAG, CONFIG_ENV, "")]
    for s in SETTINGS:
        flag = s.flag and (f"{s.flag}/--no-{s.flag[2:]}" if s.is_bool else s.flag)
        where = " or ".join(_file_display(p) for p in s.file_paths)
        rows.append((s.key, flag or "-", s.env or "-", where))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    table = "\n".join(
        ("  " + "  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3]).rstrip()
        for row in rows
    )
    return (
        "Each setting comes from the first of: a command-line flag; an environment\n"
        "variable (empty counts as unset); the TOML file named by --config or AK_CONFIG;\n"
        "the built-in default. File keys may be camelCase, snake_case or kebab-case.\n\n" + table
    )


def _file_display(path: str) -> str:
    section, _, name = path.rpartition(".")
    return f"[{section}] {name}" if section else name.replace("_", "-")


def flatten(config: Config) -> dict[str, Any]:
    """Setting key -> value, in SETTINGS order (for ``ak config``)."""
    out: dict[str, Any] = {}
    for s in SETTINGS:
        obj: Any = config
        for part in s.key.split("."):
            obj = getattr(obj, part)
        out[s.key] = obj
    return out
