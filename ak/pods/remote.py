"""The pod provider for a remote Kubernetes cluster.

Its view is a list+watch of the remote pods labelled with this node, and of
the remote namespaces it made. A local pod becomes a remote one by the pure
translation in ``ak/core/pods.py`` and the preparers (``ak/pods/prepare.py``):
remote namespace, Secret/ConfigMap copies, local identity. Statuses come back
through ``ak/core/status.py``. Emptied remote namespaces are deleted here too,
since only this side knows them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio

from ak.core import ownership
from ak.core.errors import Notice, TranslationError
from ak.core.incarnation import Incarnation, adoption_patch, incarnation
from ak.core.labels import LABEL_NODE
from ak.core.names import remote_namespace
from ak.core.namespaces import Template
from ak.core.placement import NONE as NO_PLACEMENT
from ak.core.placement import Placement
from ak.core.pods import new_ephemeral_containers, remote_pod_patch, to_remote_pod
from ak.core.resize import patch_key, resize_patch, resize_problem, with_refused_resize
from ak.core.status import TERMINAL_PHASES, local_status, with_refused_ephemeral
from ak.core.types import Obj, PodKey
from ak.kube.client import STRATEGIC, KubeClient, path
from ak.kube.errors import Conflict, Forbidden, Invalid, NotFound
from ak.kube.informer import Informer
from ak.kube.registry import Informers
from ak.metrics import PODS
from ak.pods.namespaces import RemoteNamespaces
from ak.pods.prepare import PodPreparer
from ak.pods.provider import LocalPods, Notify, Outcome
from ak.sync.queue import WorkQueue

log = logging.getLogger(__name__)


EPHEMERAL_RETRY = 10.0
LEFTOVERS_RECHECK = 5.0  # s between looks at a namespace the garbage collector is emptying
"""Seconds until an ephemeral container that waits for a Secret/ConfigMap is tried again."""


@dataclass
class PodSettings:
    node_name: str
    node_label: str
    extra_env: list[Obj]
    workers: int = 16
    namespace_template: Template = field(default_factory=Template)
    placement: Placement = NO_PLACEMENT
    storage: bool = False  # claims are provisioned remotely (ak/storage)


def _nothing(_: str) -> bool:
    return False


class RemoteCluster:
    def __init__(
        self,
        remote: KubeClient,
        settings: PodSettings,
        preparers: Sequence[PodPreparer] = (),
        *,
        informers: Informers,
        leftovers: Callable[[str], bool] = _nothing,
        holds_volumes: Callable[[str], bool] | None = None,
    ) -> None:
        """``preparers``: run in order after the remote namespace's (``prepare.py``).
        ``leftovers(remote_ns)``: whether a remote namespace still holds objects
        of AK's pods (their identity Secrets, until the garbage collector
        deletes them). ``holds_volumes(local_ns)``: with storage on, whether
        its remote namespace holds AK's claims: in use, pods or not."""
        self.remote = remote
        self.s = settings
        # Publishes the twins on ``remote_pods`` and its namespaces on ``remote_namespaces``.
        self.informers = informers
        self.remote_pods = Informer(
            remote,
            "/api/v1/pods",
            label_selector=f"{LABEL_NODE}={settings.node_label}",
            handler=self._on_remote,
            name="remote pods",
        )
        # Shared with the quota's view of them (ak/node/quotas.py): one watch.
        self.remote_namespaces = informers.shared(
            remote,
            "/api/v1/namespaces",
            f"{LABEL_NODE}={settings.node_label}",
            "remote namespaces",
        ).view({LABEL_NODE: settings.node_label}, self._on_namespace)
        self.namespaces = RemoteNamespaces(
            remote,
            settings.node_name,
            settings.namespace_template,
            self.remote_namespaces,
            guard_claims=holds_volumes is not None,
        )
        # The namespace first: everything else is written into it.
        self.preparers: list[PodPreparer] = [self.namespaces, *preparers]
        self.ns_queue: WorkQueue[str] = WorkQueue("namespaces")
        self.remote_by_ns: dict[str, set[str]] = defaultdict(set)
        self.synced = trio.Event()
        self._notify: Notify = lambda key, obj: None
        self._local_in_use: Callable[[str], bool] = _nothing
        self.leftovers = leftovers
        self.holds_volumes = holds_volumes or _nothing
        # Ephemeral containers the remote refused, per pod incarnation (uid):
        # name -> the remote's message, for the local status.
        self._refused_ephemeral: dict[PodKey, tuple[str, dict[str, str]]] = {}
        # The resize the remote refused, per pod incarnation: (uid, the resize
        # as ``patch_key`` has it, the remote's message).
        self._refused_resize: dict[PodKey, tuple[str, str, str]] = {}
        # The remote kubelet's last resize problem logged, per pod: (uid, problem).
        self._resize_logged: dict[PodKey, tuple[str, tuple[str, str]]] = {}
        PODS.labels("remote").set_function(self.remote_pods.size)

    # -- the view ------------------------------------------------------------------
    def _local_key(self, remote: Obj) -> PodKey | None:
        # A pod in a namespace that does not match its label is not ours to touch.
        return ownership.local_key(remote, self.s.node_name)

    def _on_remote(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        key = self._local_key(obj) if obj else None
        if key is None:
            return
        self.informers.remote_pods.publish(key, old, new)
        if new is None:
            self.remote_by_ns[key[0]].discard(key[1])
            self.ns_queue.add(key[0])
        else:
            self.remote_by_ns[key[0]].add(key[1])
        self._notify(key, new)

    def _on_namespace(self, old: Obj | None, new: Obj | None) -> None:
        self.informers.remote_namespaces.publish(old, new)
        obj = new or old
        if obj is not None:
            ns = ownership.local_namespace_of_namespace(obj, self.s.node_name)
            if ns is not None:
                self.ns_queue.add(ns)

    def get(self, key: PodKey) -> Obj | None:
        return self.remote_pods.get(self.remote_ns(key), key[1])

    def remote_ns(self, key: PodKey) -> str:
        return remote_namespace(self.s.node_name, key[0])

    async def run(self, notify: Notify, local: LocalPods) -> None:
        self._notify, self._local_in_use = notify, local.in_use
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.remote_pods.run)
            nursery.start_soon(self.remote_namespaces.run)
            await self.remote_pods.synced.wait()
            await self.remote_namespaces.synced.wait()
            for preparer in self.preparers:
                await preparer.synced.wait()
            self.synced.set()
            # After a restart: what the live pods use is claimed first, and only
            # then may the preparers remove what nothing claims.
            await local.synced.wait()
            for pod in local.live():
                self._track(pod)
            for preparer in self.preparers:
                preparer.tracked_all()
            await self.ns_queue.run_workers(2, self._sync_namespace)

    async def _sync_namespace(self, local_ns: str) -> float | None:
        in_use = bool(
            self._local_in_use(local_ns)
            or self.remote_by_ns.get(local_ns)
            or self.holds_volumes(local_ns)
        )
        if not in_use and self.leftovers(self.namespaces.name(local_ns)):
            # Deleting a namespace that still holds thousands of Secrets the garbage
            # collector has yet to reach keeps it Terminating for minutes, and a pod
            # created meanwhile waits (seen: 3.3 s for the first pod of a 10,000-pod
            # burst). Empty, its deletion takes a moment.
            return LEFTOVERS_RECHECK
        return await self.namespaces.sync(local_ns, in_use)

    # -- lifecycle -----------------------------------------------------------------
    def _translate(self, key: PodKey, local: Obj, *, creating: bool = True) -> Obj:
        return to_remote_pod(
            local,
            node_name=self.s.node_name,
            remote_namespace=self.remote_ns(key),
            extra_env=self.s.extra_env,
            placement=self.s.placement,
            requested_placement=creating,
            storage=self.s.storage,
        )

    async def create(self, local: Obj) -> Outcome:
        key = _key(local)
        desired = self._translate(key, local)
        notices: list[Notice] = []
        for preparer in self.preparers:
            desired = await preparer.prepare(local, desired, notices)
        try:
            made = await self.remote.create(path("pods", namespace=self.remote_ns(key)), desired)
        except Conflict as e:
            if e.already_exists:
                # Made by an earlier attempt whose answer was lost: the watch shows it.
                return Outcome(notices, again=1.0)
            raise
        except (Forbidden, Invalid) as e:
            raise TranslationError(
                "ProviderCreateFailed", f"remote cluster refused the pod: {e.message}"
            ) from e
        log.info("remote pod %s/%s created for %s/%s", self.remote_ns(key), key[1], *key)
        for preparer in self.preparers:
            await preparer.created(local, made)
        return Outcome(notices)

    async def update(self, local: Obj, remote: Obj) -> Outcome:
        key = _key(local)
        if incarnation(local, remote) is Incarnation.LEGACY:
            await self._adopt(key, local, remote)
            return Outcome()  # the watch brings the adopted twin back
        outcome = Outcome()
        try:
            patch = remote_pod_patch(local, remote, self._translate(key, local, creating=False))
        except TranslationError as e:
            log.warning("pod %s/%s: cannot update remote pod: %s", *key, e)
            patch = None
        if patch is not None:
            try:
                await self.remote.patch(
                    path("pods", namespace=self.remote_ns(key), name=key[1]), patch
                )
            except Invalid as e:
                outcome.notices.append(
                    Notice(
                        "ProviderUpdateFailed", f"remote cluster refused the update: {e.message}"
                    )
                )
        await self._add_ephemeral_containers(key, local, remote, outcome)
        await self._resize(key, local, remote, outcome)
        self._track(local)
        return outcome

    async def _resize(self, key: PodKey, local: Obj, remote: Obj, outcome: Outcome) -> None:
        """``kubectl patch --subresource resize`` on the local pod: the same on the twin.

        A resize the remote refuses is reported once (Event, log line, and
        ``PodResizePending``/``Infeasible`` in the local status) and not tried
        again until the local pod asks for another one.
        """
        uid = local["metadata"]["uid"]
        patch = resize_patch(local, remote)
        if patch is None:
            self._refused_resize.pop(key, None)
            self._log_resize_problem(key, uid, remote)
            return
        wanted = patch_key(patch)
        refused = self._refused_resize.get(key)
        if refused is not None and refused[:2] == (uid, wanted):
            return
        target = path("pods", namespace=self.remote_ns(key), name=key[1], subresource="resize")
        try:
            # Strategic merge: containers merge by name, resources key by key.
            await self.remote.patch(target, patch, content_type=STRATEGIC)
        except (Invalid, Forbidden, NotFound) as e:
            # NotFound: a remote API server without the subresource (before 1.33);
            # or the twin just went, and then nothing is left to report on.
            message = f"remote cluster refused the resize: {e.message}"
            self._refused_resize[key] = (uid, wanted, message)
            outcome.notices.append(Notice("ProviderResizeFailed", message))
            return
        self._refused_resize.pop(key, None)
        log.info("pod %s/%s: resize sent to the remote pod: %s", *key, wanted)

    def _log_resize_problem(self, key: PodKey, uid: str, remote: Obj) -> None:
        # The remote kubelet's own Warning (ResizeInfeasible, ResizeDeferred...) is
        # mirrored onto the local pod with its Events; AK's log says it too, once.
        problem = resize_problem(remote)
        if problem is None:
            self._resize_logged.pop(key, None)
        elif self._resize_logged.get(key) != (uid, problem):
            self._resize_logged[key] = (uid, problem)
            log.warning("pod %s/%s: remote resize %s: %s", *key, *problem)

    async def _add_ephemeral_containers(
        self, key: PodKey, local: Obj, remote: Obj, outcome: Outcome
    ) -> None:
        """``kubectl debug`` on the local pod: the same containers on the remote one.

        One PATCH per container, so one the remote refuses (PodSecurity, say)
        does not hold back the next; a refused one is reported once per pod.
        One that waits for a Secret or ConfigMap is looked at again later.
        """
        uid = local["metadata"]["uid"]
        entry = self._refused_ephemeral.get(key)
        refused = entry[1] if entry is not None and entry[0] == uid else {}
        containers = [
            c
            for c in new_ephemeral_containers(local, remote, self.s.extra_env)
            if c["name"] not in refused
        ]
        if not containers:
            return
        body: Obj = {"spec": {"ephemeralContainers": containers}}
        try:
            # What their env refers to, before they start.
            for preparer in self.preparers:
                body = await preparer.prepare(local, body, outcome.notices)
        except TranslationError as e:
            # Not yet (a Secret one reads is missing): the pod's own sync goes on.
            log.warning("pod %s/%s: ephemeral containers wait: %s", *key, e.message)
            outcome.notices.append(Notice(e.reason, e.message))
            outcome.again = EPHEMERAL_RETRY
            return
        target = path(
            "pods", namespace=self.remote_ns(key), name=key[1], subresource="ephemeralcontainers"
        )
        for container in body["spec"]["ephemeralContainers"]:
            try:
                # Strategic merge: the list merges by name, so this one is added.
                patch = {"spec": {"ephemeralContainers": [container]}}
                await self.remote.patch(target, patch, content_type=STRATEGIC)
            except (Invalid, Forbidden) as e:
                message = (
                    f"remote cluster refused ephemeral container {container['name']!r}: {e.message}"
                )
                refused[container["name"]] = message
                self._refused_ephemeral[key] = (uid, refused)  # kept only for pods with one
                outcome.notices.append(Notice("ProviderUpdateFailed", message))
                continue
            log.info("pod %s/%s: ephemeral container %s added remotely", *key, container["name"])

    async def _adopt(self, key: PodKey, local: Obj, remote: Obj) -> None:
        """Make a twin the original AK made this AK's own."""
        patch = adoption_patch(local)
        patch["metadata"]["uid"] = remote["metadata"]["uid"]  # only that very pod
        try:
            await self.remote.patch(path("pods", namespace=self.remote_ns(key), name=key[1]), patch)
        except (NotFound, Conflict):
            return  # gone or replaced meanwhile: the watch brings the next state
        log.info("remote pod %s/%s adopted for %s/%s", self.remote_ns(key), key[1], *key)

    async def delete(self, key: PodKey, remote: Obj, grace: int | None) -> None:
        body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        body["preconditions"] = {"uid": remote["metadata"]["uid"]}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        rns = remote["metadata"]["namespace"]
        try:
            await self.remote.delete(path("pods", namespace=rns, name=key[1]), body)
            log.info("remote pod %s/%s deleting", rns, key[1])
        except (NotFound, Conflict):
            pass

    def status(self, local: Obj, remote: Obj) -> Obj:
        status = local_status(remote, local)
        if status.get("phase") in TERMINAL_PHASES:
            return status
        key, uid = _key(local), local["metadata"]["uid"]
        now = datetime.now(UTC)
        ephemeral = self._refused_ephemeral.get(key)
        if ephemeral is not None and ephemeral[0] == uid:
            status = with_refused_ephemeral(status, local, ephemeral[1], now)
        resize = self._refused_resize.get(key)
        if resize is not None and resize[0] == uid:
            patch = resize_patch(local, remote)
            if patch is not None and patch_key(patch) == resize[1]:
                status = with_refused_resize(status, local.get("status") or {}, resize[2], now)
        return status

    def _track(self, local: Obj) -> None:
        for preparer in self.preparers:
            preparer.track(local)

    def release(self, key: PodKey) -> None:
        self._refused_ephemeral.pop(key, None)
        self._refused_resize.pop(key, None)
        self._resize_logged.pop(key, None)
        for preparer in self.preparers:
            preparer.release(key)
        self.ns_queue.add(key[0])


def _key(local: Obj) -> PodKey:
    return (local["metadata"]["namespace"], local["metadata"]["name"])
