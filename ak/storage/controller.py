"""Provision local claims on the remote cluster's storage, and apply reclaim policies.

What is decided is pure (``ak/core/storage.py``); here it is kept in step
from watches: the local claims, AK's local volumes (label
``actual.vk/node-name``), the local and remote StorageClasses, and AK's remote
claims (labels ``actual.vk/node-name`` and ``actual.vk/volume``).

* a local claim the scheduler picked this node for (its
  ``volume.kubernetes.io/selected-node``) gets a remote claim, then a local
  volume pre-bound to it, which the local volume controller binds; failures
  are ``ProvisioningFailed`` Events on the claim, the remote's own words
  mirrored while its claim waits;
* a bound claim's request raised resizes the remote claim, and the local
  claim and volume follow the remote's capacity;
* a Released local volume with reclaim policy ``Delete`` deletes its remote
  claim (checked against the remote API server, not the cache, with the
  claim's UID as precondition), then itself; ``Retain`` deletes nothing
  remote;
* the local StorageClasses are created from the remote ones when AK may
  (``packaging/local-storage.yaml`` grants it, or ships them);
* as a pod preparer (``ak/pods/prepare.py``) it holds back a remote pod until
  each of its claims is provisioned remotely by this node.

The local reads and writes are beyond a kubelet identity:
``packaging/local-storage.yaml`` or the Helm chart grants them. Until they
answer the node runs without storage, saying so once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import trio

from ak.core import ownership, storage
from ak.core.errors import Notice, TranslationError
from ak.core.labels import LABEL_NODE, LABEL_VOLUME, VOLUME_VALUE
from ak.core.names import remote_namespace
from ak.core.storage import Release, Step, StorageError
from ak.core.types import Obj
from ak.events import EventRecorder
from ak.kube.client import KubeClient, path
from ak.kube.errors import Conflict, Forbidden, Invalid, KubeError, NotFound
from ak.kube.informer import Informer
from ak.kube.ondemand import OnDemand
from ak.sync.queue import RetrySoon, WorkQueue

log = logging.getLogger(__name__)

ClaimKey = tuple[str, str]  # (local namespace, name)
CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
CLAIMS = "/api/v1/persistentvolumeclaims"
VOLUMES = "/api/v1/persistentvolumes"

PENDING_RECHECK = (5.0, 60.0)
"""Seconds between looks at the remote Events of a claim that waits remotely
(first, most): nothing else says why a remote provisioner is stuck."""
RIGHTS_RECHECK = 60.0
"""Seconds between tries of the local reads storage needs while they are refused."""

LOCAL_STORAGE_HINT = (
    "grant packaging/local-storage.yaml on the local cluster (the Helm chart does), or set "
    "[storage] enabled = false"
)


class StorageController:
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        node_name: str,
        node_label: str,
        *,
        ensure_namespace: Callable[[str], Awaitable[None]],
        namespace_changed: Callable[[str], None],
        events: EventRecorder,
        allowed: tuple[str, ...] = (),
    ) -> None:
        self.local = local
        self.remote = remote
        self.node_name = node_name
        self.node_label = node_label  # also the node's kubernetes.io/hostname
        # The pod provider's remote namespaces (``ak/pods/namespaces.py``): made
        # for a claim as for a pod, and looked at again when their claims go.
        self.ensure_namespace = ensure_namespace
        self.namespace_changed = namespace_changed
        self.events = events
        self.allowed = allowed
        self.local_claims = Informer(
            local, CLAIMS, handler=self._on_local_claim, name="local persistentvolumeclaims"
        )
        self.local_volumes = Informer(
            local,
            VOLUMES,
            label_selector=f"{LABEL_NODE}={node_label}",
            handler=self._on_volume,
            name="local persistentvolumes",
        )
        self.local_classes = Informer(
            local, CLASSES, handler=self._on_class, name="local storageclasses"
        )
        self.remote_claims = Informer(
            remote,
            CLAIMS,
            label_selector=f"{LABEL_NODE}={node_label},{LABEL_VOLUME}={VOLUME_VALUE}",
            handler=self._on_remote_claim,
            name="remote persistentvolumeclaims",
        )
        self.remote_classes = Informer(
            remote, CLASSES, handler=self._on_class, name="remote storageclasses"
        )
        # Most tenants have no claims: the remote claims' watch is open only
        # while this node has volumes, remote claims or claims to provision
        # (ak/kube/ondemand.py). Closed, its cache is empty and stays so: only
        # AK makes these claims, and a claim to provision opens it first.
        self.remote_claims_watch = OnDemand(self.remote_claims, self._remote_claims_wanted)
        self._to_provision: set[ClaimKey] = set()
        self.claims: WorkQueue[ClaimKey] = WorkQueue("storage-claims")
        self.volumes: WorkQueue[str] = WorkQueue("storage-volumes")
        self.classes: WorkQueue[str] = WorkQueue("storage-classes")
        self.ready = trio.Event()  # every cache synced: claims may be judged
        self._synced = trio.Event()
        self._synced.set()  # pods never wait for storage to start (see ``prepare``)
        self._pending_looks: dict[ClaimKey, int] = {}
        self._told: dict[ClaimKey, tuple[str, str]] = {}  # key -> (uid, message)
        self._may_create_classes = True

    # -- what changed ------------------------------------------------------------------
    def _on_local_claim(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        volume = (obj.get("spec") or {}).get("volumeName")
        selected = storage.selected_node(obj)
        if new is not None and selected == self.node_name and not volume:
            self._to_provision.add(key)
            self.remote_claims_watch.poke()
        else:
            self._to_provision.discard(key)
        if (
            selected == self.node_name
            or (volume and self.local_volumes.get("", volume) is not None)
            or (not selected and not volume and self._maybe_ours(obj))
        ):
            self.claims.add(key)
        if new is None:
            self._told.pop(key, None)
            self._pending_looks.pop(key, None)

    def _on_volume(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        self.volumes.add(obj["metadata"]["name"])
        self.remote_claims_watch.poke()
        ref = (obj.get("spec") or {}).get("claimRef") or {}
        if ref.get("name"):
            self.claims.add((ref.get("namespace", ""), ref["name"]))

    def _on_remote_claim(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        key = ownership.local_key(obj, self.node_name)
        if key is None:
            return
        local_ns = key[0]
        self.claims.add(key)
        uid = storage.made_for(obj)
        if uid:
            self.volumes.add(f"pvc-{uid}")
        if new is None:
            # The namespace may now be empty of claims (ak/pods/remote.py).
            self.namespace_changed(local_ns)

    def _on_class(self, old: Obj | None, new: Obj | None) -> None:
        self.classes.add("")
        if self.ready.is_set():
            # A class that appears may be what a failed claim waited for.
            for claim in self.local_claims.values():
                if (claim.get("spec") or {}).get("volumeName"):
                    continue
                selected = storage.selected_node(claim)
                if selected == self.node_name or (not selected and self._maybe_ours(claim)):
                    meta = claim["metadata"]
                    self.claims.add((meta["namespace"], meta["name"]))

    def _remote_claims_wanted(self) -> bool:
        return bool(self.remote_claims.size() or self.local_volumes.size() or self._to_provision)

    def _maybe_ours(self, claim: Obj) -> bool:
        """An unbound claim no node was picked for: AK's to judge if its class is AK's
        (or not yet known: judged once the caches are in)."""
        name = (claim.get("spec") or {}).get("storageClassName") or ""
        found = self.local_classes.get("", name) if name else None
        if found is None:
            return bool(name) and not self.ready.is_set()
        return found.get("provisioner") == storage.PROVISIONER

    # -- run -----------------------------------------------------------------------------
    async def run(self) -> None:
        await self._wait_for_rights()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.local_volumes.run)
            nursery.start_soon(self.local_claims.run)
            nursery.start_soon(self.local_classes.run)
            # On demand; its first LIST always runs: leftovers are found after a restart.
            nursery.start_soon(self.remote_claims_watch.run)
            nursery.start_soon(self.remote_classes.run)
            informers = (
                self.local_volumes,
                self.local_claims,
                self.local_classes,
                self.remote_claims,
                self.remote_classes,
            )
            for informer in informers:
                await informer.synced.wait()
            self.ready.set()
            log.info("storage: provisioning claims of AK's StorageClasses on the remote cluster")
            self.classes.add("")
            nursery.start_soon(self.classes.run_workers, 1, self._sync_classes)
            nursery.start_soon(self.volumes.run_workers, 2, self._sync_volume)
            await self.claims.run_workers(4, self._sync_claim)

    async def _wait_for_rights(self) -> None:
        """Start once the local reads storage needs answer; until then say once why not."""
        told = False
        while True:
            try:
                for collection in (CLAIMS, VOLUMES, CLASSES):
                    await self.local.get(collection, {"limit": 1})
                return
            except Forbidden as e:
                if not told:
                    log.warning(
                        "storage is off until the local cluster grants its reads (%s): %s",
                        e.message,
                        LOCAL_STORAGE_HINT,
                    )
                    told = True
            except KubeError as e:
                log.debug("storage: local reads failed: %s", e)
            await trio.sleep(RIGHTS_RECHECK)

    def holds_volumes(self, local_ns: str) -> bool:
        """Whether AK's remote namespace of ``local_ns`` holds claims AK made: such a
        namespace is in use, pods or not. Before the cache is synced (or when
        storage never started) the remote API server is asked before a
        namespace is deleted (``RemoteNamespaces.guard_claims``)."""
        rns = remote_namespace(self.node_name, local_ns)
        return any(c["metadata"].get("namespace") == rns for c in self.remote_claims.values())

    # -- claims -------------------------------------------------------------------------
    async def _sync_claim(self, key: ClaimKey) -> float | None:
        local = self.local_claims.get(*key)
        if local is None:
            return None
        if (local.get("spec") or {}).get("volumeName"):
            return await self._sync_bound(key, local)
        class_name = (local.get("spec") or {}).get("storageClassName") or ""
        local_class = self.local_classes.get("", class_name) if class_name else None
        provisioner = local_class.get("provisioner") if local_class is not None else None
        problem = storage.binding_problem(local, local_class)
        if problem is not None:
            # Every AK node tells it (none is picked for such a claim); each once.
            await self._fail(key, local, problem)
            return None
        if not storage.served_here(local, self.node_name, provisioner):
            return None
        try:
            remote_class = storage.resolve_remote_class(
                local_class, list(self.remote_classes.values()), self.allowed
            )
        except StorageError as e:
            await self._fail(key, local, e.message)
            return None
        rns = remote_namespace(self.node_name, key[0])
        remote = self.remote_claims.get(rns, key[1])
        first_consumer = remote_class.get("volumeBindingMode") == "WaitForFirstConsumer"
        decision = storage.provisioning_step(
            local, remote, node_label=self.node_label, first_consumer=first_consumer
        )
        if decision.step is Step.CREATE_REMOTE:
            return await self._create_remote(key, local, rns, remote_class["metadata"]["name"])
        if decision.step is Step.FAIL:
            await self._fail(key, local, decision.message)
            return None
        if decision.step is Step.WAIT:
            assert remote is not None
            return await self._mirror_remote_warnings(key, local, remote)
        if decision.step is Step.CREATE_VOLUME:
            assert remote is not None and local_class is not None
            await self._create_volume(key, local, remote, local_class, remote_class)
        return None

    async def _create_remote(
        self, key: ClaimKey, local: Obj, rns: str, remote_class: str
    ) -> float | None:
        try:
            desired = storage.remote_claim(
                local, node_label=self.node_label, remote_namespace=rns, remote_class=remote_class
            )
        except StorageError as e:
            await self._fail(key, local, e.message)
            return None
        try:
            await self.ensure_namespace(key[0])
        except TranslationError as e:
            raise RetrySoon(2.0, e.message) from e
        try:
            await self.remote.create(path("persistentvolumeclaims", namespace=rns), desired)
        except Conflict as e:
            # There is one the cache has yet to show (or one not ours): judged on the next look.
            raise RetrySoon(1.0, f"remote claim {rns}/{key[1]} exists") from e
        except (Forbidden, Invalid) as e:
            # A quota, an admission policy or a bad request, in the remote's own words.
            await self._fail(
                key, local, f"the remote cluster refused claim {rns}/{key[1]}: {e.message}"
            )
            return PENDING_RECHECK[1]
        log.info(
            "storage: remote claim %s/%s created for %s/%s in class %s",
            rns,
            key[1],
            *key,
            remote_class,
        )
        await self.events.record(
            local,
            storage.REASON_PROVISIONING,
            f"provisioning remote claim {rns}/{key[1]} in remote StorageClass {remote_class}",
            "Normal",
        )
        return None

    async def _create_volume(
        self, key: ClaimKey, local: Obj, remote: Obj, local_class: Obj, remote_class: Obj
    ) -> None:
        volume = storage.local_volume(
            local,
            remote,
            hostname=self.node_label,
            reclaim_policy=local_class.get("reclaimPolicy") or "Delete",
            remote_class=remote_class["metadata"]["name"],
            local_class=local_class["metadata"]["name"],
        )
        try:
            await self.local.create(VOLUMES, volume)
        except Conflict:
            return  # made before a restart: the volume controller binds it
        name = volume["metadata"]["name"]
        log.info("storage: local volume %s made for claim %s/%s", name, *key)
        self._told.pop(key, None)
        await self.events.record(
            local,
            storage.REASON_PROVISIONED,
            f"provisioned volume {name} on the remote cluster as claim "
            f"{remote['metadata']['namespace']}/{remote['metadata']['name']}",
            "Normal",
        )

    async def _sync_bound(self, key: ClaimKey, local: Obj) -> float | None:
        """A bound claim of one of AK's volumes: expansion, and capacity in step."""
        volume = self.local_volumes.get("", local["spec"]["volumeName"])
        if volume is None or not storage.is_own_volume(volume, self.node_label):
            return None
        rns, rname = storage.remote_of(volume)
        remote = self.remote_claims.get(rns, rname)
        if remote is None or storage.made_for(remote) != local["metadata"]["uid"]:
            # Deleted on the remote cluster by someone else: AK makes no empty
            # claim in its place (the pod would start on nothing), it says so.
            message = (
                f"remote claim {rns}/{rname} of volume {volume['metadata']['name']} is gone "
                "from the remote cluster, and its data with it unless its volume was retained "
                "there; delete this claim to provision a new one"
            )
            await self._tell(key, local, storage.REASON_REMOTE_CLAIM_MISSING, message)
            return None
        grow = storage.expansion_patch(local, remote)
        if grow is not None:
            try:
                await self.remote.patch(
                    path("persistentvolumeclaims", namespace=rns, name=rname), grow
                )
                log.info(
                    "storage: remote claim %s/%s resized to %s",
                    rns,
                    rname,
                    storage.requested_storage(local),
                )
            except (Forbidden, Invalid) as e:
                message = f"the remote cluster refused to resize claim {rns}/{rname}: {e.message}"
                await self._tell(key, local, storage.REASON_RESIZE_FAILED, message)
                return None
        volume_patch = storage.volume_patch(volume, remote)
        if volume_patch is not None:
            await self.local.patch(
                path("persistentvolumes", name=volume["metadata"]["name"]), volume_patch
            )
        status = storage.claim_status_patch(local, remote)
        if status is not None:
            await self.local.patch(
                path("persistentvolumeclaims", namespace=key[0], name=key[1], subresource="status"),
                {"status": status},
            )
        if (remote.get("status") or {}).get("phase") != "Bound":
            return await self._mirror_remote_warnings(key, local, remote)
        self._pending_looks.pop(key, None)
        return None

    async def _mirror_remote_warnings(self, key: ClaimKey, local: Obj, remote: Obj) -> float:
        """The newest Warning about the remote claim, as an Event on the local one; and
        when to look again (nothing is watched for the remote claim's Events)."""
        meta = remote["metadata"]
        try:
            events = await self.remote.get(
                path("events", namespace=meta["namespace"]),
                {"fieldSelector": f"involvedObject.uid={meta.get('uid', '')},type=Warning"},
            )
        except KubeError as e:
            log.debug(
                "storage: events of remote claim %s/%s: %s", meta["namespace"], meta["name"], e
            )
            events = {"items": []}
        items = events.get("items") or []
        if items:
            newest = max(items, key=lambda ev: ev.get("lastTimestamp") or ev.get("eventTime") or "")
            reason = newest.get("reason") or storage.REASON_FAILED
            await self._tell(
                key,
                local,
                storage.REASON_FAILED if reason == "ProvisioningFailed" else reason,
                f"remote claim {meta['namespace']}/{meta['name']}: {newest.get('message', '')}",
            )
        looks = self._pending_looks.get(key, 0)
        self._pending_looks[key] = looks + 1
        return min(PENDING_RECHECK[0] * 2.0**looks, PENDING_RECHECK[1])

    async def _fail(self, key: ClaimKey, local: Obj, message: str) -> None:
        await self._tell(key, local, storage.REASON_FAILED, message)

    async def _tell(self, key: ClaimKey, local: Obj, reason: str, message: str) -> None:
        """A Warning Event on the claim, once per claim incarnation and message."""
        told = (local["metadata"].get("uid", ""), message)
        if self._told.get(key) == told:
            return
        self._told[key] = told
        log.warning("storage: claim %s/%s: %s: %s", key[0], key[1], reason, message)
        await self.events.record(local, reason, message)

    # -- volumes ------------------------------------------------------------------------
    async def _sync_volume(self, name: str) -> float | None:
        volume = self.local_volumes.get("", name)
        if volume is None or not storage.is_own_volume(volume, self.node_label):
            return None
        rns, rname = storage.remote_of(volume)
        cached = self.remote_claims.get(rns, rname) if rns and rname else None
        if storage.release_step(volume, cached, node_label=self.node_label) is Release.KEEP:
            return None
        # About to delete something: asked of the remote API server, never the cache.
        remote: Obj | None = None
        if rns and rname:
            with contextlib.suppress(NotFound):
                remote = await self.remote.get(
                    path("persistentvolumeclaims", namespace=rns, name=rname)
                )
        step = storage.release_step(volume, remote, node_label=self.node_label)
        if step is Release.DELETE_REMOTE:
            assert remote is not None
            uid = remote["metadata"].get("uid")
            try:
                await self.remote.delete(
                    path("persistentvolumeclaims", namespace=rns, name=rname),
                    {"preconditions": {"uid": uid}},
                )
            except NotFound:
                return None  # gone already (a second look at the same release)
            log.info(
                "storage: remote claim %s/%s deleted: volume %s released (reclaim Delete)",
                rns,
                rname,
                name,
            )
            return None  # its deletion's watch event brings the volume back
        if step is Release.FORGET:
            await self._let_go(volume)
        return None

    async def _let_go(self, volume: Obj) -> None:
        """Drop AK's finalizer; a released volume with reclaim Delete is deleted too."""
        meta = volume["metadata"]
        name = meta["name"]
        finalizers = meta.get("finalizers") or []
        if storage.FINALIZER in finalizers:
            await self.local.patch(
                path("persistentvolumes", name=name),
                {
                    "metadata": {
                        "finalizers": [f for f in finalizers if f != storage.FINALIZER],
                        "resourceVersion": meta.get("resourceVersion"),
                    }
                },
            )
        policy = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy")
        if policy == "Delete" and not meta.get("deletionTimestamp"):
            with contextlib.suppress(NotFound):
                await self.local.delete(path("persistentvolumes", name=name))
            log.info("storage: local volume %s deleted (reclaim Delete)", name)

    # -- classes ------------------------------------------------------------------------
    async def _sync_classes(self, _: str) -> float | None:
        if not self._may_create_classes:
            return None
        wanted = storage.local_classes(list(self.remote_classes.values()), self.allowed)
        for desired in wanted:
            name = desired["metadata"]["name"]
            current = self.local_classes.get("", name)
            try:
                if current is None:
                    with contextlib.suppress(Conflict):
                        await self.local.create(CLASSES, desired)
                        log.info("storage: local StorageClass %s created", name)
                else:
                    patch = storage.class_patch(desired, current)
                    if patch is not None:
                        await self.local.patch(f"{CLASSES}/{name}", patch)
            except Forbidden as e:
                self._may_create_classes = False
                log.warning(
                    "storage: cannot create local StorageClass %s (%s): apply the classes in "
                    "packaging/local-storage.yaml, or grant storageclasses create/patch",
                    name,
                    e.message,
                )
                return None
        return None

    # -- the pod preparer ---------------------------------------------------------------
    @property
    def synced(self) -> trio.Event:
        return self._synced

    async def prepare(self, local: Obj, desired: Obj, notices: list[Notice]) -> Obj:
        claims = storage.pod_claims(local)
        if not claims:
            return desired
        if not self.ready.is_set():
            raise TranslationError(
                storage.REASON_WAITING,
                "waiting for AK's view of the claims and volumes; if it lasts, "
                + LOCAL_STORAGE_HINT
                + ", and packaging/remote-rbac.yaml on the remote cluster",
                settling=True,
            )
        ns = local["metadata"]["namespace"]
        rns = remote_namespace(self.node_name, ns)
        for pod_claim in claims:
            claim = self.local_claims.get(ns, pod_claim.claim)
            volume = await self._volume_of(claim)
            decided = storage.claim_serves_pod(local, pod_claim, claim, volume, self.node_label)
            if decided.step is Step.FAIL:
                raise TranslationError(storage.REASON_VOLUME, decided.message)
            if decided.step is Step.WAIT:
                raise TranslationError(storage.REASON_WAITING, decided.message, settling=True)
            assert claim is not None
            remote = self.remote_claims.get(rns, pod_claim.claim)
            if remote is None or storage.made_for(remote) != claim["metadata"]["uid"]:
                raise TranslationError(
                    storage.REASON_WAITING,
                    f"waiting for remote claim {rns}/{pod_claim.claim} of volume "
                    f'"{pod_claim.volume}"',
                    settling=True,
                )
        return desired

    async def _volume_of(self, claim: Obj | None) -> Obj | None:
        name = ((claim or {}).get("spec") or {}).get("volumeName")
        if not name:
            return None
        volume = self.local_volumes.get("", name)
        if volume is None:
            # Not one of AK's: read it to say what it is.
            with contextlib.suppress(NotFound, Forbidden):
                volume = await self.local.get(path("persistentvolumes", name=name))
        return volume

    async def created(self, local: Obj, remote: Obj) -> None:
        pass

    def track(self, local: Obj) -> None:
        pass

    def release(self, key: tuple[str, str]) -> None:
        pass

    def tracked_all(self) -> None:
        pass
