"""Whether a remote object is this node's, and for which local namespace.

Every remote object AK makes for a local one (a pod, a copy of a Secret,
ConfigMap, Service, NetworkPolicy or PDB, an identity Secret, a claim, a
remote namespace) carries the local namespace in ``actual.vk/namespace`` and
lives in the remote namespace AK derives from it for its node (or is that
namespace). The label alone is not proof: another AK node's objects carry the
same label for the same local namespace name, and anyone with rights in a
remote namespace can write it. The pair is: the label names a local namespace
whose remote namespace, for this node, is where the object is. Selectors
narrow what a watch brings; this rule decides, in one place.
"""

from __future__ import annotations

from ak.core.labels import LABEL_NAMESPACE
from ak.core.names import remote_namespace
from ak.core.types import Obj


def local_namespace(remote: Obj, node_name: str) -> str | None:
    """The local namespace a namespaced remote object stands for on node
    ``node_name``, or None when it is not that node's."""
    meta = remote.get("metadata") or {}
    return _judge(meta, meta.get("namespace"), node_name)


def local_namespace_of_namespace(remote_ns: Obj, node_name: str) -> str | None:
    """The local namespace a remote Namespace is for on node ``node_name``, or
    None when it is not one of that node's."""
    meta = remote_ns.get("metadata") or {}
    return _judge(meta, meta.get("name"), node_name)


def _judge(meta: Obj, where: object, node_name: str) -> str | None:
    local_ns = (meta.get("labels") or {}).get(LABEL_NAMESPACE) or ""
    if not local_ns or remote_namespace(node_name, local_ns) != where:
        return None
    return str(local_ns)


def local_key(remote: Obj, node_name: str) -> tuple[str, str] | None:
    """(local namespace, name) of a namespaced remote object of ``node_name``
    that keeps its local object's name, or None when it is not that node's."""
    local_ns = local_namespace(remote, node_name)
    if local_ns is None:
        return None
    return (local_ns, str(remote["metadata"]["name"]))
