"""Local service-account tokens for remote pods, kept fresh like a kubelet keeps them.

A pod preparer (see ``ak.pods.prepare``):

``prepare``
    before the remote pod is created: replicate the local CA if the pod reads
    it; request the pod's tokens from the LOCAL API server (TokenRequest bound
    to the local pod's name and UID, with each projected source's audience
    and expirationSeconds), and write them with the pinned downward-API
    fields into the pod's identity Secret in the remote namespace; set the
    ``KUBERNETES_*`` variables to the local endpoint.
``track``
    every sync of a running pod: remember it. After an AK restart the
    identity Secret's annotations tell when its tokens were issued, so
    nothing is requested until a refresh is due.
``release``
    the pod is gone: delete its identity Secret.

Refreshes are scheduled by ``token_refresh.refresh_due`` (80 % of the
lifetime, 3 minutes before expiry or ``max_age``, whichever is first, with
jitter) on a ``RefreshTimer`` that sleeps until the earliest due time; due
pods go through a work queue, which retries failures with backoff. A remote
identity Secret no pod claims (AK was down when its pod went away) is deleted
once its remote pod is gone too.

No token is ever logged: only pod names, lifetimes and due times are.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import trio

from ak.core.errors import Notice, TranslationError
from ak.core.labels import (
    ANNOTATION_LOCAL_UID,
    LABEL_NODE,
    LABEL_POD_IDENTITY,
    POD_IDENTITY_VALUE,
)
from ak.core.local_apiserver import Endpoint, with_apiserver_env
from ak.core.names import remote_namespace
from ak.core.serviceaccount import (
    PodIdentity,
    identity_record,
    identity_secret,
    identity_secret_name,
    is_identity_secret,
    owner_reference,
    pod_identity,
    without_values,
)
from ak.core.token_refresh import MAX_AGE, refresh_due
from ak.core.types import Obj, PodKey
from ak.kube.client import KubeClient, path
from ak.kube.errors import Conflict, KubeError, NotFound
from ak.kube.registry import Informers
from ak.metrics import TOKENS_WRITTEN
from ak.sync.keyed import KeyedLock
from ak.sync.queue import WorkQueue
from ak.tokens.identity import (
    IdentityWrite,
    PodTokens,
    essentials,
    gone_or_going,
    identity_key,
    remote_pod_of,
    request_token,
)
from ak.tokens.owned import put_owned
from ak.tokens.rootca import RootCAReplicator
from ak.tokens.timer import RefreshTimer

log = logging.getLogger(__name__)


REASON_IDENTITY = "PodIdentityFailed"
GC_DELAY = 60.0
"""How long an identity Secret nobody claims waits before AK checks whether its
pod still runs: after a restart the pod controller claims the live ones first."""

_FINISHED = ("Succeeded", "Failed")
REWRITE_DELAY = 1.0
"""Seconds before an identity Secret deleted under a live pod is looked at again."""


@dataclass(frozen=True)
class TokenSettings:
    """What the token controller needs of AK's configuration (made by ``ak.run``)."""

    node_name: str
    node_label: str
    endpoint: Endpoint
    max_age: float = MAX_AGE
    workers: int = 4


def _key(local: Obj) -> PodKey:
    return (local["metadata"]["namespace"], local["metadata"]["name"])


class TokenController:
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        settings: TokenSettings,
        *,
        informers: Informers,
        twin: Callable[[PodKey], Obj | None],
        wall: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.local = local
        self.remote = remote
        self.s = settings
        self.wall = wall
        self.rand = rand
        # Identity Secrets per remote namespace: the remote garbage collector
        # deletes them some time after their pods, and a remote namespace is not
        # deleted while they remain (``RemoteCluster.leftovers``).
        self.identities_by_ns: Counter[str] = Counter()
        self.identities = informers.shared(
            remote, "/api/v1/secrets", f"{LABEL_NODE}={settings.node_label}", "remote secrets"
        ).view(
            {LABEL_NODE: settings.node_label, LABEL_POD_IDENTITY: POD_IDENTITY_VALUE},
            self._on_identity,
            transform=without_values,
            wanted=lambda: bool(self.pods),  # no pods, no Secrets: the watch may close
        )
        self.root_ca = RootCAReplicator(
            local, remote, settings.node_name, settings.node_label, informers=informers
        )
        self.queue: WorkQueue[PodKey] = WorkQueue("tokens")
        self.timer: RefreshTimer[PodKey] = RefreshTimer(self._refresh_due, wall=wall)
        self.pods: dict[PodKey, PodTokens] = {}
        self.synced = trio.Event()
        self._released: set[PodKey] = set()
        # One writer per pod: prepare, refresh and delete never interleave.
        self._locks: KeyedLock[PodKey] = KeyedLock()
        self._nursery: trio.Nursery | None = None
        # The remote pod of a local one, from the pod provider's cache.
        self.twin = twin

    async def run(self) -> None:
        # A fresh queue each time: a crashed run may have left keys marked in progress.
        self.queue = WorkQueue("tokens")
        for key in [*self.pods, *self._released]:
            self.queue.add(key)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.identities.run)
            nursery.start_soon(self.root_ca.run)
            await self.identities.synced.wait()
            self.synced.set()
            nursery.start_soon(self.timer.run)
            await self.queue.run_workers(self.s.workers, self._sync)

    def _refresh_due(self, key: PodKey) -> None:
        self.queue.add(key)

    # -- the pod preparer (ak/pods/prepare.py) --------------------------------------------
    async def prepare(self, local: Obj, desired: Obj, notices: list[Notice]) -> Obj:
        key = _key(local)
        identity = pod_identity(local)
        desired = with_apiserver_env(local, desired, self.s.endpoint)
        if identity.root_ca:
            await self.root_ca.ensure(key[0], key)
        async with self._locks.hold(key):
            pod = self._remember(local, identity)
            # Tokens now, so a refusal stops the pod; the Secret once the pod
            # exists, so that it can be owned by it (``created``).
            pod.pending = await self._next_identity(key, pod) if identity.needs_secret else None
        return desired

    async def created(self, local: Obj, remote: Obj) -> None:
        key = _key(local)
        async with self._locks.hold(key):
            pod = self.pods.get(key)
            if pod is None or pod.uid != local["metadata"].get("uid") or pod.pending is None:
                return
            write, pod.pending = pod.pending, None
            try:
                await self._write_identity(key, pod, write, owner_reference(remote))
            except (KubeError, TranslationError) as e:
                # The pod exists; its kubelet waits for the Secret: write it soon.
                log.warning("identity Secret of pod %s/%s not written (%s); retrying", *key, e)
                self.queue.add(key)
                if isinstance(e, TranslationError):
                    raise  # e.g. someone else's Secret of that name: the pod's Event says so

    def track(self, local: Obj) -> None:
        key = _key(local)
        pod = self.pods.get(key)
        if pod is not None and pod.uid == local["metadata"].get("uid"):
            pod.local = essentials(local)  # for its phase
            if pod.pending is not None:  # prepared, never written (ephemeral containers)
                self.queue.add(key)
            return
        identity = pod_identity(local)
        if identity.root_ca:
            self.root_ca.claim(key[0], key)
        self._remember(local, identity)
        if identity.needs_secret:
            self.queue.add(key)  # adopt the Secret's schedule, or write one

    def tracked_all(self) -> None:
        pass  # unclaimed identity Secrets wait GC_DELAY and their pod's end instead

    def release(self, key: PodKey) -> None:
        self.pods.pop(key, None)
        self.timer.cancel(key)
        self.root_ca.release(key)
        self._released.add(key)
        self.queue.add(key)

    def _remember(self, local: Obj, identity: PodIdentity) -> PodTokens:
        key = _key(local)
        pod = self.pods.get(key)
        if pod is None or pod.uid != local["metadata"].get("uid"):
            pod = self.pods[key] = PodTokens(essentials(local), identity)
            self.identities.poke()
            self.timer.cancel(key)
        pod.local = essentials(local)
        self._released.discard(key)
        return pod

    # -- remote identity Secrets ---------------------------------------------------------
    def _on_identity(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is not None and (old is None) != (new is None):
            ns = obj["metadata"].get("namespace", "")
            self.identities_by_ns[ns] += 1 if old is None else -1
            if self.identities_by_ns[ns] <= 0:
                del self.identities_by_ns[ns]
        key = identity_key(obj, self.s.node_name) if obj is not None else None
        if key is None:
            return
        pod = self.pods.get(key)
        if pod is not None:
            if new is None and old is not None and not self._went_with_its_pod(key, old):
                # Written again unless the pod turns out to be going (the Secret's
                # deletion can arrive before the remote pod's): look once caches caught up.
                log.debug("identity Secret of pod %s/%s deleted under it", *key)
                pod.due = None
                if self._nursery is not None:
                    self.queue.add_after(key, REWRITE_DELAY, self._nursery)
        elif new is not None and self._nursery is not None:
            self.queue.add_after(key, GC_DELAY, self._nursery)

    def _went_with_its_pod(self, key: PodKey, secret: Obj) -> bool:
        """Whether the remote garbage collector deleted ``secret`` because its pod
        went: the local pod is still terminating then, and needs no new tokens."""
        owners = secret["metadata"].get("ownerReferences") or []
        return bool(owners) and gone_or_going(self.twin(key), owners[0].get("uid"))

    def _secret_path(self, key: PodKey) -> tuple[str, str]:
        return remote_namespace(self.s.node_name, key[0]), identity_secret_name(key[1])

    async def _sync(self, key: PodKey) -> None:
        async with self._locks.hold(key):
            pod = self.pods.get(key)
            if pod is None:
                await self._collect(key)
            elif not pod.identity.needs_secret:
                return
            elif (pod.local.get("status") or {}).get("phase") in _FINISHED:
                self.timer.cancel(key)  # its containers are done; the Secret goes on release
            elif self._twin_going(key):
                self.timer.cancel(key)  # stopping: its tokens outlive it, the Secret goes with it
            else:
                await self._ensure_identity(key, pod)

    def _twin_going(self, key: PodKey) -> bool:
        return gone_or_going(self.twin(key))

    def _fresh(self, pod: PodTokens, current: Obj | None) -> bool:
        """Whether the identity Secret ``current`` still serves ``pod`` (sets ``pod.due``)."""
        if current is None:
            return False
        if pod.due is None:
            # Not written by this process (AK restarted): trust what it says about itself.
            record = identity_record(current) if is_identity_secret(current) else None
            if record is None or not record.serves(pod.local, pod.identity):
                return False
            pod.issued_at = record.issued_at.timestamp()
            pod.due = self._due(pod, pod.issued_at, record.ttl)
        return self.wall() < pod.due

    def _due(self, pod: PodTokens, issued_at: float, ttl: int) -> float:
        if not pod.identity.tokens:
            return math.inf
        return refresh_due(issued_at, ttl, max_age=self.s.max_age, jitter=self.rand())

    async def _ensure_identity(self, key: PodKey, pod: PodTokens) -> None:
        """Refresh, or write again, the identity Secret of a pod running remotely."""
        write, pod.pending = pod.pending or await self._next_identity(key, pod), None
        if write is not None:
            await self._write_identity(key, pod, write, await self._owner(key, pod, write))

    async def _next_identity(self, key: PodKey, pod: PodTokens) -> IdentityWrite | None:
        """The identity Secret to write for ``pod`` (its tokens requested), or None
        if the one that exists still serves."""
        rns, name = self._secret_path(key)
        current = self.identities.get(rns, name)
        # Right after a write the cache may lag: pod.due then describes our write.
        if pod.due is not None and self.wall() < pod.due:
            self.timer.set(key, pod.due)
            return None
        if self._fresh(pod, current):
            assert pod.due is not None
            self.timer.set(key, pod.due)
            log.debug(
                "tokens of pod %s/%s adopted; refresh due in %.0fs", *key, pod.due - self.wall()
            )
            return None
        if current is not None and not is_identity_secret(current):
            raise TranslationError(
                REASON_IDENTITY,
                f"a Secret named {name!r} already exists in remote namespace {rns} "
                "and was not made by AK",
            )
        issued_at = self.wall()
        tokens: dict[str, str] = {}
        ttl: int | None = None
        for spec in pod.identity.tokens:
            token, lifetime = await request_token(self.local, pod.local, spec)
            tokens[spec.key] = token
            ttl = lifetime if ttl is None else min(ttl, lifetime)
        body = identity_secret(
            pod.local,
            pod.identity,
            tokens=tokens,
            issued_at=datetime.fromtimestamp(issued_at, UTC),
            ttl=ttl or 0,
            node_name=self.s.node_name,
            remote_namespace=rns,
        )
        return IdentityWrite(body, current, issued_at, ttl or 0, len(tokens))

    async def _owner(self, key: PodKey, pod: PodTokens, write: IdentityWrite) -> Obj | None:
        """The ownerReference of a Secret written for a pod that already runs: the
        one it has, else its remote pod's (a GET: after a crash between creating
        the pod and its Secret, or for a Secret of an AK before owner references)."""
        refs = (write.current or {}).get("metadata", {}).get("ownerReferences") or []
        if refs:
            return dict(refs[0])
        rns = self._secret_path(key)[0]
        remote_pod = await remote_pod_of(self.remote, rns, key[1], pod.uid)
        return owner_reference(remote_pod) if remote_pod is not None else None

    async def _write_identity(
        self, key: PodKey, pod: PodTokens, write: IdentityWrite, owner: Obj | None
    ) -> None:
        body = write.body
        if owner is not None:
            # The remote garbage collector deletes the Secret with its pod: no
            # DELETE of AK's own per pod.
            body["metadata"]["ownerReferences"] = [owner]
        await put_owned(
            self.remote,
            "secrets",
            body,
            write.current,
            owned=is_identity_secret,
            reason=REASON_IDENTITY,
        )
        TOKENS_WRITTEN.labels("refresh" if pod.issued_at else "new").inc()
        rns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        pod.issued_at = write.issued_at
        pod.due = self._due(pod, write.issued_at, write.ttl)
        if math.isfinite(pod.due):
            self.timer.set(key, pod.due)
            log.info(
                "%d token(s) of pod %s/%s written to %s/%s (lifetime %ss, refresh in %.0fs)",
                write.count,
                *key,
                rns,
                name,
                write.ttl,
                pod.due - write.issued_at,
            )
        else:
            log.info("identity of pod %s/%s written to %s/%s", *key, rns, name)

    async def _collect(self, key: PodKey) -> None:
        """Delete the identity Secret of a pod nobody tracks, once its remote pod is gone."""
        released = key in self._released
        self._released.discard(key)
        rns, name = self._secret_path(key)
        current = self.identities.get(rns, name)
        if current is None or not is_identity_secret(current):
            return
        if current["metadata"].get("ownerReferences"):
            return  # the remote garbage collector deletes it with its pod
        if not released:
            uid = (current["metadata"].get("annotations") or {}).get(ANNOTATION_LOCAL_UID, "")
            if await remote_pod_of(self.remote, rns, key[1], uid) is not None:
                return  # still running: the pod controller will claim or release it
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": current["metadata"]["uid"]},
        }
        try:
            await self.remote.delete(path("secrets", namespace=rns, name=name), body)
            log.info("identity Secret %s/%s of pod %s/%s deleted", rns, name, *key)
        except (NotFound, Conflict):
            pass
