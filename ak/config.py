"""AK's settings: where they come from and how they are checked.

Each setting is resolved on its own, highest source first:

1. command-line flags (``ak run --node-name vk-ak-example``);
2. environment variables: ``AK_`` + the flag name in upper case with ``-``
   replaced by ``_`` (``--kubelet-port`` -> ``AK_KUBELET_PORT``). A variable
   set to the empty string counts as unset, so a template that renders an
   empty value does not override the file;
3. the TOML file named by ``--config PATH`` or ``AK_CONFIG``;
4. built-in defaults (the dataclass defaults below).

Environment variables: AK_CONFIG, AK_NODE_NAME, AK_TAINT, AK_INTERNAL_IP,
AK_KUBELET_PORT, AK_LOCAL_KUBECONFIG, AK_LOCAL_CONTEXT, AK_LOCAL_QPS,
AK_LOCAL_BURST, AK_LOCAL_APISERVER_HOST, AK_LOCAL_APISERVER_PORT,
AK_REMOTE_KUBECONFIG, AK_REMOTE_CONTEXT, AK_REMOTE_QPS, AK_REMOTE_BURST,
AK_REMOTE_RUNTIME_CLASS, AK_POD_WORKERS, AK_TOKEN_MAX_AGE, AK_METRICS_PORT,
AK_LOG_LEVEL, AK_LOG_FORMAT, AK_TLS_CERT_FILE, AK_TLS_PRIVATE_KEY_FILE,
AK_CLIENT_CA_FILE, AK_CERT_DIR, AK_AUTO_CAPACITY,
AK_AUTO_CAPACITY_SELECTOR, AK_AUTO_CAPACITY_FRACTION, AK_LEADER_ELECT,
AK_LEADER_ELECT_IDENTITY.

Node labels, resources and the environment injected into pods are maps and
can only be set in the file. The file uses the seed's Helm value names::

    node-name = "vk-ak-example"          # or [node] name
    [local]
    kubeconfig = "/etc/ak/local.yaml"    # omitted or "" => in-cluster config
    apiserverHost = "10.0.0.1"           # what remote pods use to reach the local API server
    [remote]
    kubeconfig = "/etc/ak/remote.yaml"
    [pods]
    env = { HTTP_PROXY = "http://proxy:3128" }   # or [{ name = ..., value = ... }]
    [pods.placement]                     # added to every remote pod
    nodeSelector = { pool = "tenants" }
    tolerations = [{ key = "tenants", operator = "Exists", effect = "NoSchedule" }]
    runtimeClassName = "gvisor"
    [node.resources.allocatable]
    cpu = "100"
    [kubelet]
    tlsCertFile = "/etc/ak/kubelet.crt"  # both unset => a CSR to the local cluster
    tlsPrivateKeyFile = "/etc/ak/kubelet.key"

Keys may be written camelCase, snake_case or kebab-case (``apiserverHost``,
``apiserver_host``, ``apiserver-host``). Unknown keys are errors: a typo must
not silently fall back to a default. Resource maps are merged over the
defaults; capacity defaults to allocatable and vice versa.

Every problem is a ``ConfigError`` with one line naming the source, e.g.
``config ak.toml: [node] kubeletPort: 70000 is not a port number (1-65535)``.
Nothing here touches the network; reading the file is the only I/O.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from ak.core import placement
from ak.core.node_labels import invalid_node_labels
from ak.core.validation import is_dns_subdomain, is_label_value, is_qualified_name
from ak.errors import ConfigError

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
    workers: int = 16  # pods synced concurrently
    # Service-account tokens are refreshed at 80 % of their lifetime or once this
    # old (seconds), whichever comes first: the kubelet's 24 h.
    token_max_age: int = 86400


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


# --- value checks: each takes a flag/env string or a TOML value -------------


class _Bad(ValueError):
    """A value is wrong; ``entry`` names the offending key inside a map."""

    def __init__(self, message: str, entry: str | None = None) -> None:
        super().__init__(message)
        self.entry = entry


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool) else repr(value)


def _integer(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise _Bad(f"{_show(value)} is not {what}")
    if not low <= number <= high:
        raise _Bad(f"{_show(value)} is not {what}")
    return number


def _port(value: object) -> int:
    return _integer(value, "a port number (1-65535)", 1, 65535)


def _port_or_zero(value: object) -> int:
    return _integer(value, "a port number (1-65535, or 0 to disable)", 0, 65535)


def _positive(value: object) -> int:
    return _integer(value, "a positive integer", 1, 2**31 - 1)


_DECIMAL = re.compile(r"\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _rate(value: object) -> float:
    rate = math.nan
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and _DECIMAL.fullmatch(value.strip())
    ):
        rate = float(value)
    if not (math.isfinite(rate) and rate >= 0):
        raise _Bad(f"{_show(value)} is not a rate (a number >= 0, 0 = unlimited)")
    return rate


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(f"{_show(value)} is not a boolean (true or false)")


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{_show(value)} is not a string")
    return value


def _optional(value: object) -> str | None:
    """Optional strings: "" means "none" (e.g. in-cluster), overriding lower sources."""
    return _string(value) or None


def _node_name(value: object) -> str:
    name = _string(value)
    if not is_dns_subdomain(name):
        raise _Bad(
            f"{_show(name)} is not a valid node name (a DNS subdomain: at most 253 "
            "characters, lowercase letters, digits, '-' and '.', starting and ending "
            "with a letter or digit)"
        )
    return name


def _ip(value: object) -> str | None:
    text = _optional(value)
    if text is not None:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise _Bad(f"{_show(text)} is not an IP address") from None
    return text


def _host(value: object) -> str | None:
    """A host name or IP; a URL here would end up inside KUBERNETES_SERVICE_HOST."""
    text = _optional(value)
    if text is not None and not re.fullmatch(r"[A-Za-z0-9.:_-]+", text):
        raise _Bad(f"{_show(text)} is not a host name or IP address (no scheme, port or path)")
    return text


_TOKEN_MAX_AGE_MIN = 10


def _token_max_age(value: object) -> int:
    return _integer(
        value, f"a number of seconds ({_TOKEN_MAX_AGE_MIN}-86400)", _TOKEN_MAX_AGE_MIN, 86400
    )


def _choice(*choices: str, aliases: Mapping[str, str] | None = None) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _string(value).strip().lower()
        text = (aliases or {}).get(text, text)
        if text not in choices:
            raise _Bad(f"{_show(value)} is not one of {', '.join(choices)}")
        return text

    return check


# Kubernetes resource.Quantity: <number><suffix>, suffix one of the binary SI
# (Ki..Ei), decimal SI (n u m "" k M G T P E) or an exponent (e3, E-2).
# Negative values are refused: they make no sense as node capacity.
_QUANTITY = re.compile(r"\+?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")


def is_quantity(text: str) -> bool:
    return _QUANTITY.fullmatch(text) is not None


def _table(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{_show(value)} is not a table")
    return value


def _resources(value: object) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, raw in _table(value).items():
        if not is_qualified_name(name):
            raise _Bad("is not a resource name", entry=name)
        # `pods = 1000` is as clear as `pods = "1000"`
        number = isinstance(raw, int | float) and not isinstance(raw, bool)
        quantity = str(raw) if number else raw
        if not isinstance(quantity, str) or not is_quantity(quantity):
            raise _Bad(f"{_show(raw)} is not a Kubernetes quantity", entry=name)
        result[name] = quantity
    return result


def _labels(value: object) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, label in _table(value).items():
        if not is_qualified_name(key):
            raise _Bad("is not a valid label key", entry=key)
        if not isinstance(label, str) or not is_label_value(label):
            raise _Bad(f"{_show(label)} is not a valid label value", entry=key)
        result[key] = label
    return result


def _fraction(value: object) -> float:
    share = _rate(value)
    if not 0 < share <= 1:
        raise _Bad(f"{_show(value)} is not a fraction in (0, 1]")
    return share


def _node_labels(value: object) -> dict[str, str]:
    labels = _labels(value)
    # NodeRestriction refuses these on a node's own object: fail at start, not in a loop.
    refused = invalid_node_labels(labels)
    if refused:
        raise _Bad(
            "is a label a node may not set on itself (NodeRestriction); "
            "use a prefix outside kubernetes.io and k8s.io",
            entry=refused[0],
        )
    return labels


def _annotations(value: object) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, text in _table(value).items():
        if not is_qualified_name(key):
            raise _Bad("is not a valid annotation key", entry=key)
        if not isinstance(text, str):
            raise _Bad(f"{_show(text)} is not a string", entry=key)
        result[key] = text
    return result


_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")  # apimachinery IsEnvVarName


def _env(value: object) -> tuple[tuple[str, str], ...]:
    """``{NAME = "v"}`` or the Kubernetes form ``[{name = "NAME", value = "v"}]``."""
    pairs: list[tuple[str, object]] = []
    if isinstance(value, list):
        for i, item in enumerate(value, 1):
            entry = f"entry {i}"
            if not isinstance(item, dict) or "name" not in item:
                raise _Bad("expected a table with name and value", entry=entry)
            unknown = sorted(set(item) - {"name", "value"})
            if unknown:
                raise _Bad(f"unknown key {_show(unknown[0])}", entry=entry)
            pairs.append((_string(item["name"]), item.get("value", "")))
    else:
        pairs = list(_table(value).items())
    seen: set[str] = set()
    for name, text in pairs:
        if not _ENV_NAME.fullmatch(name):
            raise _Bad("is not a valid environment variable name", entry=name)
        if name in seen:
            raise _Bad("is set twice", entry=name)
        if not isinstance(text, str):
            raise _Bad(f"{_show(text)} is not a string", entry=name)
        seen.add(name)
    return tuple((name, str(text)) for name, text in pairs)


def _tolerations(value: object) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise _Bad(f"{_show(value)} is not a list of tables")
    out = []
    for i, item in enumerate(value, 1):
        try:
            out.append(placement.toleration(item))
        except ValueError as e:
            raise _Bad(str(e), entry=f"entry {i}") from None
    return tuple(out)


def _runtime_class(value: object) -> str | None:
    name = _optional(value)
    if name is not None and not is_dns_subdomain(name):
        raise _Bad(f"{_show(name)} is not a valid RuntimeClass name")
    return name


# --- the settings table ------------------------------------------------------


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
    Setting("pods.workers", _positive, "--pod-workers", "pods synced concurrently"),
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

_FILE_KEYS = {path: s for s in SETTINGS for path in s.file_paths}
_FILE_SECTIONS = {p.rsplit(".", i)[0] for p in _FILE_KEYS for i in range(1, p.count(".") + 1)}
# section -> the keys it accepts, for "did you mean"
_FILE_NAMES = {
    section: [
        p.rpartition(".")[2]
        for p in (*_FILE_KEYS, *_FILE_SECTIONS)
        if p.rpartition(".")[0] == section
    ]
    for section in ("", *_FILE_SECTIONS)
}
_FILE_HINTS = {
    key: "the remote API server and its credentials come from [remote] kubeconfig"
    for key in ("remote.apiserver_host", "remote.token", "remote.ca_data")
}
_SECTION_CLASSES: dict[str, type[Any]] = {
    "node": NodeSettings,
    "local": LocalSettings,
    "remote": RemoteSettings,
    "pods": PodSettings,
    "kubelet": KubeletSettings,
    "namespaces": NamespaceSettings,
    "": Config,
}
_MISSING_NAME = "no node name: pass --node-name, set AK_NODE_NAME or node-name in the config file"


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


# --- loading -----------------------------------------------------------------


def _snake(key: str) -> str:
    """apiserverHost, apiserver-host and internalIP -> apiserver_host, internal_ip."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).replace("-", "_").lower()


class _FileValue(NamedTuple):
    value: Any
    where: str  # "[node] kubeletPort", for messages about the value
    table: str  # "[node.resources.allocatable]", for messages about one of its entries


def _read_file(path: str) -> dict[str, _FileValue]:
    """Setting key -> what the file says, for every setting the file sets."""
    try:
        text = Path(path).read_bytes().decode()
    except OSError as e:
        raise ConfigError(f"config {path}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        if at:
            msg = f"line {at[1]}, column {at[2]}: {msg[: at.start()]}"
        raise ConfigError(f"config {path}: {msg}") from e

    found: dict[str, _FileValue] = {}

    def walk(table: dict[str, Any], section: str, shown: str) -> None:
        for raw, value in table.items():
            dotted = f"{section}.{_snake(raw)}" if section else _snake(raw)
            here = f"[{shown}] {raw}" if shown else raw
            inner = f"{shown}.{raw}" if shown else raw
            if dotted in _FILE_SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"config {path}: {here}: {_show(value)} is not a table")
                walk(value, dotted, inner)
            elif dotted in _FILE_KEYS:
                key = _FILE_KEYS[dotted].key
                if key in found:
                    raise ConfigError(
                        f"config {path}: {here}: set twice (also as {found[key].where})"
                    )
                found[key] = _FileValue(value, here, f"[{inner}]")
            else:
                close = difflib.get_close_matches(_snake(raw), _FILE_NAMES[section], n=1)
                hint = _FILE_HINTS.get(dotted) or (f"did you mean {close[0]!r}?" if close else "")
                raise ConfigError(
                    f"config {path}: {f'[{shown}]' if shown else 'top level'}: unknown key "
                    + repr(raw)
                    + (f" ({hint})" if hint else "")
                )

    walk(doc, "", "")
    return found


def _flags(args: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    """Flag values by argparse dest; None means "not given"."""
    values = dict(vars(args) if isinstance(args, argparse.Namespace) else args)
    dests = {s.dest for s in SETTINGS if s.dest} | {"config"}
    if not isinstance(args, argparse.Namespace):
        unknown = sorted(set(values) - dests)
        if unknown:  # a caller's typo, not a user's: fail loudly
            raise TypeError(f"load_config: unknown argument {unknown[0]!r}")
    return {k: v for k, v in values.items() if k in dests and v is not None}


def load_config(args: argparse.Namespace | Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """Resolve every setting from flags, environment, file and defaults.

    ``args`` is the argparse result of ``ak run``/``ak config`` or a plain
    mapping of the same attribute names (``{"node_name": "vk"}``); None
    values count as not given. ``environ`` is usually ``os.environ``.
    Raises ConfigError with a one-line message.
    """
    flags = _flags(args)
    env = {k: v for k, v in environ.items() if v != ""}
    file: dict[str, _FileValue] = {}
    config_path = flags.get("config") or env.get(CONFIG_ENV)
    if config_path:
        file = _read_file(config_path)

    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for s in SETTINGS:
        if s.dest and s.dest in flags:
            raw, where, label = flags[s.dest], s.flag, f"flag {s.flag}"
        elif s.env and s.env in env:
            raw, where, label = env[s.env], s.env, f"env {s.env}"
        elif s.key in file:
            raw, loc = file[s.key].value, file[s.key].where
            where, label = f"config {config_path}: {loc}", f"file {config_path} {loc}"
        else:
            values[s.key], source[s.key] = builtin_default(s.key), "default"
            continue
        try:
            values[s.key] = s.convert(raw)
        except _Bad as e:
            if e.entry is not None:  # only file values are maps
                where = f"config {config_path}: {file[s.key].table} {e.entry}"
            raise ConfigError(f"{where}: {e}") from None
        source[s.key] = label

    if values["node.name"] is MISSING:
        raise ConfigError(_MISSING_NAME)
    cert, key = values["kubelet.tls_cert_file"], values["kubelet.tls_private_key_file"]
    if (cert is None) != (key is None):
        given = "tls_cert_file" if cert else "tls_private_key_file"
        raise ConfigError(
            f"{source[f'kubelet.{given}']}: --tls-cert-file and --tls-private-key-file "
            "go together; set both or neither"
        )
    _fill_resources(values, source)
    return _build(values, source)


def _fill_resources(values: dict[str, Any], source: dict[str, str]) -> None:
    """Merge resource maps over the defaults; a missing one copies the other."""
    cap_set = source["node.capacity"] != "default"
    alloc_set = source["node.allocatable"] != "default"
    if alloc_set and not cap_set:
        values["node.capacity"] = values["node.allocatable"]
        source["node.capacity"] = source["node.allocatable"] + " (capacity = allocatable)"
    elif cap_set and not alloc_set:
        values["node.allocatable"] = values["node.capacity"]
        source["node.allocatable"] = source["node.capacity"] + " (allocatable = capacity)"
    for key in ("node.capacity", "node.allocatable"):
        values[key] = {**DEFAULT_RESOURCES, **values[key]}


def _build(values: dict[str, Any], source: dict[str, str]) -> Config:
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTION_CLASSES}
    for key, value in values.items():
        section, _, name = key.rpartition(".")
        sections[section][name] = value
    parts = {name: _SECTION_CLASSES[name](**kw) for name, kw in sections.items() if name}
    return Config(**parts, **sections[""], source=source)


def flatten(config: Config) -> dict[str, Any]:
    """Setting key -> value, in SETTINGS order (for ``ak config``)."""
    out: dict[str, Any] = {}
    for s in SETTINGS:
        obj: Any = config
        for part in s.key.split("."):
            obj = getattr(obj, part)
        out[s.key] = obj
    return out
