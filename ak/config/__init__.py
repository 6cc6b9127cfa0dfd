"""AK's settings: where they come from and how they are checked.

Each setting is resolved on its own, highest source first:

1. command-line flags (``ak run --node-name vk-ak-example``);
2. environment variables: ``AK_`` + the flag name in upper case with ``-``
   replaced by ``_`` (``--kubelet-port`` -> ``AK_KUBELET_PORT``). A variable
   set to the empty string counts as unset, so a template that renders an
   empty value does not override the file;
3. the TOML file named by ``--config PATH`` or ``AK_CONFIG``;
4. built-in defaults (the dataclass defaults in ``settings``).

Environment variables: AK_CONFIG, AK_NODE_NAME, AK_TAINT, AK_INTERNAL_IP,
AK_KUBELET_PORT, AK_LOCAL_KUBECONFIG, AK_LOCAL_CONTEXT, AK_LOCAL_QPS,
AK_LOCAL_BURST, AK_LOCAL_APISERVER_HOST, AK_LOCAL_APISERVER_PORT,
AK_REMOTE_KUBECONFIG, AK_REMOTE_CONTEXT, AK_REMOTE_QPS, AK_REMOTE_BURST,
AK_REMOTE_RUNTIME_CLASS, AK_POD_WORKERS, AK_POD_ADDRESS_RANGE,
AK_TOKEN_MAX_AGE, AK_METRICS_PORT,
AK_LOG_LEVEL, AK_LOG_FORMAT, AK_TLS_CERT_FILE, AK_TLS_PRIVATE_KEY_FILE,
AK_CLIENT_CA_FILE, AK_CERT_DIR, AK_AUTO_CAPACITY,
AK_AUTO_CAPACITY_SELECTOR, AK_AUTO_CAPACITY_FRACTION, AK_LEADER_ELECT,
AK_LEADER_ELECT_IDENTITY, AK_NAMESPACE_ISOLATION, AK_NETWORK_POLICIES, AK_STORAGE.

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
    [pods.placement.allowed]             # what a pod's actual.vk/remote-placement may target
    nodeLabels = { "gpu.example.com/model" = ["a100"], zone = [] }   # [] = any value
    tolerations = { "nvidia.com/gpu" = [] }
    [node.resources.allocatable]
    cpu = "100"
    [namespaces.isolation]               # a NetworkPolicy in every remote namespace
    enabled = true
    ingressFrom = [{ namespaceSelector = { matchLabels = { team = "ingress" } } }]
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

``settings`` is what a resolved configuration is (the dataclasses),
``validators`` the value checks, ``table`` the settings table (flag, variable
and file keys of each setting), ``loading`` the resolution from flags,
environment, file and defaults. Callers import the package: ``from ak.config
import Config, load_config``.
"""

from ak.config.loading import load_config
from ak.config.settings import (
    DEFAULT_NAMESPACE_LABELS,
    DEFAULT_RESOURCES,
    ClusterSettings,
    Config,
    KubeletSettings,
    LocalSettings,
    NamespaceSettings,
    NodeSettings,
    PodSettings,
    RemoteSettings,
    builtin_default,
)
from ak.config.table import CONFIG_ENV, CONFIG_FLAG, SETTINGS, Setting, flatten, precedence_doc
from ak.config.validators import is_quantity

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FLAG",
    "DEFAULT_NAMESPACE_LABELS",
    "DEFAULT_RESOURCES",
    "SETTINGS",
    "ClusterSettings",
    "Config",
    "KubeletSettings",
    "LocalSettings",
    "NamespaceSettings",
    "NodeSettings",
    "PodSettings",
    "RemoteSettings",
    "Setting",
    "builtin_default",
    "flatten",
    "is_quantity",
    "load_config",
    "precedence_doc",
]
