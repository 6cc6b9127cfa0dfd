"""Names of the objects AK creates on the remote cluster.

Remote namespace
    The seed's scheme is kept whenever it yields a valid namespace name, so
    remote namespaces made by the seed keep working::

        <node name>-<FNV-1 64 of local namespace, lowercase hex, unpadded>

    It fails for node names containing '.' (valid node names are DNS
    subdomains, namespaces are DNS labels) or too long to leave room for the
    hash. Then the name is derived as::

        <prefix>-<node hash: 8 hex>-<namespace hash: 16 hex>

    * prefix: the node name lowercased, every character outside [a-z0-9-]
      replaced by '-', cut to 37 characters, leading/trailing '-' stripped;
      omitted (with its '-') when empty. 37 = 63 - 1 - 8 - 1 - 16.
    * node hash: FNV-1 64 of the FULL node name, folded to 32 bits
      (high half XOR low half), zero-padded. It keeps nodes apart whose
      prefixes coincide ("a.b" vs "a-b", or names equal in their first 37
      characters).
    * namespace hash: FNV-1 64 of the local namespace, zero-padded to 16.

    Collisions: two derived names collide only if both 32-bit node hashes and
    64-bit namespace hashes collide. A derived name can equal a seed-scheme
    name only if some node is literally named "<prefix>-<node hash>" of
    another node, which is not an accident that happens.

Node label value (``actual.vk/node-name``)
    The node name verbatim when it is a valid label value (seed compatible;
    always true for names up to 63 characters). Otherwise::

        <node name cut to 46 chars, invalid chars -> '-', trimmed to start
         and end alphanumeric>-<FNV-1 64 of the full node name, 16 hex>

    46 = 63 - 1 - 16. Always compare against this function's output, never
    the raw node name, when selecting AK objects by label.
"""

import re

from ak.core.labels import ownership_labels
from ak.core.types import Obj
from ak.core.validation import DNS_LABEL_MAX, LABEL_VALUE_MAX, is_dns_label, is_label_value

_FNV1_64_OFFSET = 0xCBF29CE484222325
_FNV1_64_PRIME = 0x100000001B3
_MASK_64 = (1 << 64) - 1
_MASK_32 = (1 << 32) - 1

_NODE_HASH_HEX = 8
_NAMESPACE_HASH_HEX = 16
_PREFIX_MAX = DNS_LABEL_MAX - 1 - _NODE_HASH_HEX - 1 - _NAMESPACE_HASH_HEX
_LABEL_HASH_HEX = 16
_LABEL_PREFIX_MAX = LABEL_VALUE_MAX - 1 - _LABEL_HASH_HEX

_NOT_NAMESPACE_CHAR = re.compile(r"[^a-z0-9-]")
_NOT_LABEL_CHAR = re.compile(r"[^-_.A-Za-z0-9]")
_NON_ALNUM_EDGES = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")


def fnv1_64(data: bytes) -> int:
    """FNV-1 (multiply, then XOR; not FNV-1a), as Go's ``hash/fnv.New64``."""
    h = _FNV1_64_OFFSET
    for byte in data:
        h = (h * _FNV1_64_PRIME) & _MASK_64
        h ^= byte
    return h


def _fnv1_32_folded(data: bytes) -> int:
    # FNV-1 XORs the last byte into the low bits only, so the high half alone
    # would not tell apart names differing in their last character.
    h = fnv1_64(data)
    return (h >> 32) ^ (h & _MASK_32)


def node_prefix(node_name: str) -> str:
    """The readable part of a derived remote namespace name."""
    cleaned = _NOT_NAMESPACE_CHAR.sub("-", node_name.lower())
    return cleaned[:_PREFIX_MAX].strip("-")


def remote_namespace(node_name: str, local_namespace: str) -> str:
    namespace_hash = fnv1_64(local_namespace.encode())
    seed_name = f"{node_name}-{namespace_hash:x}"
    if is_dns_label(seed_name):
        return seed_name
    parts = [
        node_prefix(node_name),
        f"{_fnv1_32_folded(node_name.encode()):0{_NODE_HASH_HEX}x}",
        f"{namespace_hash:0{_NAMESPACE_HASH_HEX}x}",
    ]
    return "-".join(p for p in parts if p)


def node_label_value(node_name: str) -> str:
    if is_label_value(node_name):
        return node_name
    cleaned = _NOT_LABEL_CHAR.sub("-", node_name)[:_LABEL_PREFIX_MAX]
    cleaned = _NON_ALNUM_EDGES.sub("", cleaned)
    digest = f"{fnv1_64(node_name.encode()):0{_LABEL_HASH_HEX}x}"
    return f"{cleaned}-{digest}" if cleaned else digest


def remote_namespace_object(
    node_name: str, local_namespace: str, extra_labels: dict[str, str] | None = None
) -> Obj:
    """The remote Namespace for one local namespace; AK's labels win over
    ``extra_labels`` so a configuration can never disown a namespace."""
    labels = dict(extra_labels or {})
    labels.update(ownership_labels(node_label_value(node_name), local_namespace))
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": remote_namespace(node_name, local_namespace), "labels": labels},
    }
