"""The name under which AK keeps the LOCAL cluster's CA bundle remotely.

Every cluster publishes its own CA as ``kube-root-ca.crt`` into every
namespace (kube-controller-manager's root-ca-cert-publisher). A copy of the
local one under that name would fight the remote publisher, so AK keeps it as
``ROOT_CA_REPLICA`` and renames every reference in the remote pod.
"""

from ak.core.codec import clone
from ak.core.deps import KUBE_ROOT_CA
from ak.core.types import Obj

ROOT_CA_REPLICA = "ak-local-kube-root-ca.crt"

__all__ = ["KUBE_ROOT_CA", "ROOT_CA_REPLICA", "rewrite_root_ca_ref"]


def rewrite_root_ca_ref(ref: Obj) -> Obj:
    """A ``configMap`` volume, source, ``configMapKeyRef`` or ``configMapRef`` (a deep
    copy), reading the local CA replica instead of ``kube-root-ca.crt``."""
    result = clone(ref)
    if result.get("name") == KUBE_ROOT_CA:
        result["name"] = ROOT_CA_REPLICA
    return result
