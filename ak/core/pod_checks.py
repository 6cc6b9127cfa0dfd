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
# cluster has. Claims are provisioned on the remote cluster by AK when storage
# is on (ak/core/storage.py); with it off nothing would ever bind them
# remotely. (A generic ephemeral volume then goes over as it is, and the
# remote cluster makes its claim in its default class.)
_UNSUPPORTED_VOLUMES = {
    "hostPath": "it would use a directory on a remote node",
}
_STORAGE_VOLUMES = {
    "persistentVolumeClaim": "PersistentVolumeClaims are not provisioned on the remote "
    "cluster: this node's storage is off ([storage] enabled = false)",
}


def check_supported(pod: Obj, *, storage: bool = False) -> None:
    """Raise ``TranslationError`` if AK cannot run ``pod`` remotely; ``storage``:
    claims are provisioned remotely (whether each claim is, is the storage
    preparer's to check)."""
    spec: dict[str, Any] = pod.get("spec") or {}
    for field in _HOST_NAMESPACE_FIELDS:
        if spec.get(field):
            raise TranslationError(
                REASON_HOST_NAMESPACE,
                f"spec.{field} is not supported: the pod would share a namespace "
                "with a node of the remote cluster",
            )
    unsupported = _UNSUPPORTED_VOLUMES if storage else {**_UNSUPPORTED_VOLUMES, **_STORAGE_VOLUMES}
    for volume in spec.get("volumes") or []:
        for source, why in unsupported.items():
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
