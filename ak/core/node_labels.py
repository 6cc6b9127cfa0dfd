"""Which labels a node may put on itself.

Mirrors the kubelet's ``--node-labels`` check (k8s.io/kubelet
``IsKubeletLabel``) and NodeRestriction admission: labels in the
``kubernetes.io``/``k8s.io`` namespaces are reserved, except a short list of
well-known ones and the ``kubelet.kubernetes.io``/``node.kubernetes.io``
namespaces. A node presenting its own credentials that sets any other
reserved label is refused by the API server, so AK rejects it at start-up
with a clear message instead.
"""

from ak.core.validation import is_label_value, is_qualified_name

WELL_KNOWN_NODE_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    }
)
_KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
_RESERVED_NAMESPACES = ("kubernetes.io", "k8s.io")


def _within(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def _node_may_set(key: str) -> bool:
    namespace = key.rpartition("/")[0]
    if not any(_within(namespace, d) for d in _RESERVED_NAMESPACES):
        return True
    if key in WELL_KNOWN_NODE_LABELS:
        return True
    return any(_within(namespace, d) for d in _KUBELET_NAMESPACES)


def invalid_node_labels(labels: dict[str, str]) -> list[str]:
    """Keys (sorted) that are malformed, have a malformed value, or are
    reserved labels a node may not set on itself."""
    return sorted(
        key
        for key, value in labels.items()
        if not (is_qualified_name(key) and is_label_value(value) and _node_may_set(key))
    )
