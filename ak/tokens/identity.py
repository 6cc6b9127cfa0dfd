"""One pod's local identity on its way to the remote cluster: tokens requested
from the local API server, what the token controller keeps per pod, and the
remote pod an identity Secret belongs to."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from ak.core import ownership
from ak.core.errors import TranslationError
from ak.core.labels import ANNOTATION_LOCAL_UID, ANNOTATION_POD_NAME
from ak.core.pod_env import pinned_fields
from ak.core.serviceaccount import PodIdentity, TokenSpec, identity_secret_name
from ak.core.types import Obj
from ak.kube.client import KubeClient, path
from ak.kube.errors import ApiError, Forbidden, KubeError, NotFound, is_transient

REASON_TOKEN = "ServiceAccountTokenFailed"
QUICK_RETRIES = (0.02, 0.05, 0.1)
"""Pauses between TokenRequests refused right after a pod was bound, before the
refusal goes to the work queue (whose first backoff, 0.4 s, was every burst's
slowest pod)."""


@dataclass
class IdentityWrite:
    """An identity Secret about to be written, its tokens already issued."""

    body: Obj
    current: Obj | None  # what the cache had
    issued_at: float
    ttl: int
    count: int  # tokens in it


@dataclass
class PodTokens:
    """What AK knows about one pod's identity."""

    local: Obj
    identity: PodIdentity
    issued_at: float | None = None  # of the tokens in the Secret, AK's wall clock
    due: float | None = None  # None: unknown (look at the Secret), inf: nothing expires
    pending: IdentityWrite | None = None  # made before the pod is created, written after

    @property
    def uid(self) -> str:
        return str(self.local["metadata"].get("uid", ""))


def essentials(local: Obj) -> Obj:
    """The fields of a pod this controller reads later (names, uid, pinned spec
    fields, phase): kept for the pod's lifetime instead of the whole pod."""
    meta, spec = local["metadata"], local.get("spec") or {}
    return {
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid") if k in meta},
        "spec": {
            k: spec[k] for k in ("nodeName", "serviceAccountName", "serviceAccount") if k in spec
        },
        "status": {"phase": (local.get("status") or {}).get("phase")},
    }


async def request_token(client: KubeClient, local: Obj, spec: TokenSpec) -> tuple[str, int]:
    """(token, lifetime in seconds the API server granted)."""
    meta = local["metadata"]
    ns = meta["namespace"]
    account = pinned_fields(local)["spec.serviceAccountName"]
    where = path("serviceaccounts", namespace=ns, name=account, subresource="token")
    body = spec.request(meta["name"], meta.get("uid", ""))
    try:
        for pause in (*QUICK_RETRIES, None):
            try:
                answer = await client.create(where, body)
                break
            except (Forbidden, NotFound):
                # A pod seen on AK's watch may not be visible yet to the API
                # server's TokenRequest checks (the Node authorizer's graph, its
                # pod lookup): refused for a few milliseconds after the binding.
                if pause is None:
                    raise
                await trio.sleep(pause)
    except ApiError as e:
        if is_transient(e):
            raise
        raise TranslationError(
            REASON_TOKEN,
            f"the local API server refused a token for service account {ns}/{account}: "
            f"{e.status} {e.message}",
            # The Node authorizer refuses until its graph has seen the binding,
            # and a pod may be bound before its ServiceAccount is made.
            settling=True,
        ) from e
    token = (answer.get("status") or {}).get("token")
    if not isinstance(token, str) or not token:
        raise KubeError(f"TokenRequest for {ns}/{account} answered without a token")
    lifetime = (answer.get("spec") or {}).get("expirationSeconds") or spec.expiration_seconds
    return token, int(lifetime)


async def remote_pod_of(remote: KubeClient, rns: str, name: str, local_uid: str) -> Obj | None:
    """The remote pod ``rns/name`` if it runs for the local pod ``local_uid`` (a GET)."""
    try:
        pod = await remote.get(path("pods", namespace=rns, name=name))
    except NotFound:
        return None
    annotations = pod["metadata"].get("annotations") or {}
    return pod if annotations.get(ANNOTATION_LOCAL_UID) == local_uid else None


def gone_or_going(twin: Obj | None, uid: str | None = None) -> bool:
    """Whether a remote pod (from AK's cache) is gone, deleting, or, given ``uid``,
    another pod than the one with that uid."""
    if twin is None or twin["metadata"].get("deletionTimestamp"):
        return True
    return uid is not None and twin["metadata"].get("uid") != uid


def identity_key(secret: Obj, node_name: str) -> tuple[str, str] | None:
    """The local pod (namespace, name) an identity Secret of this node is for."""
    meta = secret["metadata"]
    local_ns = ownership.local_namespace(secret, node_name)
    pod_name = (meta.get("annotations") or {}).get(ANNOTATION_POD_NAME, "")
    if local_ns is None or not pod_name:
        return None
    if identity_secret_name(pod_name) != meta["name"]:
        return None
    return (local_ns, pod_name)
