"""Environment of the remote pod's containers.

Precedence: a variable the user declared in ``env`` always wins over AK's
configured ``extra_env``; AK never silently overrides what the pod author
wrote. AK's variables are put FIRST so that the user's variables can refer to
them with ``$(NAME)`` (Kubernetes expands only earlier entries). A variable
the user supplies only through ``envFrom`` is overridden by AK's, because an
``env`` entry always beats ``envFrom`` in Kubernetes; that is what one wants
for ``KUBERNETES_SERVICE_HOST`` and friends.

Downward API ``fieldRef``s that would read the REMOTE pod's identity are
replaced by literal values of the LOCAL pod: controllers commonly use
``metadata.namespace`` (POD_NAMESPACE) to find their own objects, and the
remote namespace name means nothing in the local cluster. All pinned fields
are immutable for the pod's lifetime, so a literal is exact. Downward-API
*volumes* read the same values from the pod's identity Secret (see
``serviceaccount``). ``status.podIP``/``hostIP`` and the other fields stay
``fieldRef``s: only the remote kubelet knows them, and the remote values are
the ones mirrored into the local pod's status.

References to the ``kube-root-ca.crt`` ConfigMap (``configMapKeyRef``,
``envFrom``) read the remote replica of the LOCAL CA bundle (see ``root_ca``).
"""

from typing import Any

from ak.core.codec import clone
from ak.core.root_ca import rewrite_root_ca_ref
from ak.core.types import Obj


def pinned_fields(local: Obj) -> dict[str, str]:
    """fieldPath -> value of the local pod, for fields that differ remotely."""
    metadata: dict[str, Any] = local.get("metadata") or {}
    spec: dict[str, Any] = local.get("spec") or {}
    return {
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName")
        or spec.get("serviceAccount")
        or "default",
    }


def _pin(var: Obj, pinned: dict[str, str]) -> Obj:
    value_from: Obj = var.get("valueFrom") or {}
    field_path = (value_from.get("fieldRef") or {}).get("fieldPath")
    if field_path in pinned:
        return {"name": var["name"], "value": pinned[field_path]}
    result = clone(var)
    if "configMapKeyRef" in value_from:
        result["valueFrom"]["configMapKeyRef"] = rewrite_root_ca_ref(value_from["configMapKeyRef"])
    return result


def _env_from(source: Obj) -> Obj:
    result = clone(source)
    if "configMapRef" in source:
        result["configMapRef"] = rewrite_root_ca_ref(source["configMapRef"])
    return result


def container_env(container: Obj, extra_env: list[Obj], pinned: dict[str, str]) -> list[Obj]:
    user_env = [_pin(var, pinned) for var in container.get("env") or []]
    taken = {var["name"] for var in user_env}
    injected: list[Obj] = []
    for var in extra_env:
        if var["name"] not in taken:
            taken.add(var["name"])
            injected.append(clone(var))
    return injected + user_env


def with_env(container: Obj, extra_env: list[Obj], pinned: dict[str, str]) -> Obj:
    result = clone(container)
    if container.get("envFrom"):
        result["envFrom"] = [_env_from(source) for source in container["envFrom"]]
    env = container_env(container, extra_env, pinned)
    if env:
        result["env"] = env
    else:
        result.pop("env", None)
    return result
