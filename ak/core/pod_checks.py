"""Pods AK refuses to run remotely, and why.

The list is deliberately short: only features that would act on the shared
remote nodes, or that depend on objects AK does not replicate. Everything
else is left to the remote cluster's own admission (Pod Security, quotas),
which knows its policy better than AK does.
"""

from typing import Any

from ak.core.errors import TranslationError
from ak.core.types import Obj

REASON_HOST_NAMESPACE = "UnsupportedHostNamespace"
REASON_VOLUME = "UnsupportedVolume"
REASON_RESOURCE_CLAIM = "UnsupportedResourceClaim"

# hostNetwork/hostPID/hostIPC would put the pod into a namespace of whatever
# remote node it lands on, shared with other tenants' pods, and report that
# node's IP as the pod IP: nothing the local cluster asked for.
_HOST_NAMESPACE_FIELDS = ("hostNetwork", "hostPID", "hostIPC")

# hostPath reads and writes a remote node's disk, not the data the local
# cluster has; PersistentVolumeClaims (and the volumes bound to them) are not
# replicated, so the remote pod would stay Pending forever.
_UNSUPPORTED_VOLUMES = {
    "hostPath": "it would use a directory on a remote node",
    "persistentVolumeClaim": "PersistentVolumeClaims are not replicated to the remote cluster",
}


def check_supported(pod: Obj) -> None:
    """Raise ``TranslationError`` if AK cannot run ``pod`` remotely."""
    spec: dict[str, Any] = pod.get("spec") or {}
    for field in _HOST_NAMESPACE_FIELDS:
        if spec.get(field):
            raise TranslationError(
                REASON_HOST_NAMESPACE,
                f"spec.{field} is not supported: the pod would share a namespace "
                "with a node of the remote cluster",
            )
    for volume in spec.get("volumes") or []:
        for source, why in _UNSUPPORTED_VOLUMES.items():
            if source in volume:
                raise TranslationError(
                    REASON_VOLUME,
                    f'volume "{volume.get("name", "")}" uses {source}, which is not '
                    f"supported: {why}",
                )
    # DRA claims name ResourceClaims (or templates) that exist only locally.
    if spec.get("resourceClaims"):
        raise TranslationError(
            REASON_RESOURCE_CLAIM,
            "spec.resourceClaims is not supported: ResourceClaims are not "
            "replicated to the remote cluster",
        )
