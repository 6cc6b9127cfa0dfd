"""Which local pod a remote pod runs for: the one place this is decided.

A pod's namespace and name are not its identity: a StatefulSet's ``web-0`` is
deleted and made again under the same name, and a remote pod left by the old
one must never be patched into serving the new one (it would run the old
spec). AK records the local pod's UID on every remote pod it creates
(``actual.vk/local-uid``) and compares.

A remote pod with AK's node and namespace labels but no UID record was made
by the original Go AK (negz/actual-kubelets), which cleared UIDs and recorded
nothing. A user replacing it with this AK under the same node name must keep
every running pod, so such a pod is adopted, unless it cannot be the local
pod's: it is on its way out, or it was created before the local pod existed
(an earlier pod of the same name). Cluster clocks may differ a little, so
"before" allows ``CLOCK_SKEW``.
"""

from datetime import timedelta
from enum import Enum

from ak.core.labels import (
    ANNOTATION_LOCAL_UID,
    ANNOTATION_PROPAGATED_KEYS,
    LABEL_MANAGED_BY,
    MANAGED_BY_VALUE,
)
from ak.core.pods import propagated_keys
from ak.core.timefmt import parse_time
from ak.core.types import Obj

CLOCK_SKEW = timedelta(minutes=2)


class Incarnation(Enum):
    SAME = "same"
    """Made by AK for this local pod."""
    LEGACY = "legacy"
    """Made by the original AK, for this local pod as far as can be told: adopt it."""
    OTHER = "other"
    """Made for another local pod of the same name: delete it, create anew."""


def incarnation(local: Obj, remote: Obj) -> Incarnation:
    local_meta: Obj = local.get("metadata") or {}
    remote_meta: Obj = remote.get("metadata") or {}
    recorded = (remote_meta.get("annotations") or {}).get(ANNOTATION_LOCAL_UID)
    if recorded is not None:
        return Incarnation.SAME if recorded == local_meta.get("uid") else Incarnation.OTHER
    if remote_meta.get("deletionTimestamp"):
        return Incarnation.OTHER
    remote_created = remote_meta.get("creationTimestamp")
    local_created = local_meta.get("creationTimestamp")
    if (
        remote_created
        and local_created
        and parse_time(remote_created) + CLOCK_SKEW < parse_time(local_created)
    ):
        return Incarnation.OTHER
    return Incarnation.LEGACY


def adoption_patch(local: Obj) -> Obj:
    """Merge patch making an adopted remote pod one of AK's own.

    The original AK copied every local label and annotation, so all of them
    are recorded as propagated: AK may remove them again when the local pod
    drops one. Its ``actual.vk/replicated-service-account.name`` annotation is
    left alone (harmless, and not AK's to remove).
    """
    meta: Obj = local["metadata"]
    return {
        "metadata": {
            "labels": {LABEL_MANAGED_BY: MANAGED_BY_VALUE},
            "annotations": {
                ANNOTATION_LOCAL_UID: meta["uid"],
                ANNOTATION_PROPAGATED_KEYS: propagated_keys(
                    meta.get("labels") or {}, meta.get("annotations") or {}
                ),
            },
        }
    }
