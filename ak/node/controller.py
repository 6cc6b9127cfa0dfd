"""The virtual node: registration, Lease heartbeat, status that tells the truth.

Ready follows the remote API server: while AK cannot reach it, pods bound here
cannot be started, stopped or observed, so the node says NotReady and why.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import trio

from ak.backoff import Backoff
from ak.core.kubelet_status import CONDITION as KUBELET_API_CONDITION
from ak.core.labels import TAINT_KEY
from ak.core.node import lease_object, node_is_ready, node_object, node_status_patch
from ak.core.quota_capacity import capped
from ak.core.types import Obj
from ak.kube.client import STRATEGIC, KubeClient, path
from ak.kube.errors import ApiError, Conflict, KubeError, NotFound
from ak.kubelet.health import KubeletAPIHealth
from ak.node.lease import node_lease_path

log = logging.getLogger(__name__)

REMOTE_UNKNOWN = "RemoteUnknown"
STARTUP_GRACE = 30.0
"""Seconds a restarted AK keeps a Ready node Ready while its caches sync."""


LEASE_DURATION = 40
LEASE_RENEW_EVERY = 10.0
STATUS_CHECK_EVERY = 10.0
STATUS_REPORT_EVERY = 60.0
REMOTE_PROBE_EVERY = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class NodeSpec:
    name: str
    labels: dict[str, str]
    taint: bool
    internal_ip: str
    kubelet_port: int
    version: str
    capacity: dict[str, str]
    allocatable: dict[str, str]


@dataclass
class RemoteHealth:
    """Whether the remote API server answers; read by the node status."""

    ok: bool = False
    reason: str = REMOTE_UNKNOWN
    message: str = "remote API server not contacted yet"
    changed: trio.Event = field(default_factory=trio.Event)

    def set(self, ok: bool, reason: str, message: str) -> None:
        if (ok, reason, message) != (self.ok, self.reason, self.message):
            self.ok, self.reason, self.message = ok, reason, message
            self.changed.set()
            self.changed = trio.Event()


class NodeController:
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        spec: NodeSpec,
        health: RemoteHealth,
        synced: trio.Event | None = None,
        *,
        manage_lease: bool = True,
        capacity: Callable[[], dict[str, str] | None] = lambda: None,
        kubelet_api: KubeletAPIHealth | None = None,
        limits: Callable[[], Mapping[str, Decimal]] = dict,
    ) -> None:
        self.local = local
        self.remote = remote
        self.spec = spec
        self.health = health
        # Extra readiness input: e.g. the pod caches are synced.
        # Set when the pod caches are synced: Ready waits for it, and its
        # setting is a change the status must report at once, not at the next
        # periodic check (which made a fresh node Ready up to 10 s late).
        self.synced = synced
        self.node: Obj | None = None
        self.registered = trio.Event()
        # Set once the Node as written says Ready=True. Registration writes
        # "StartingUp" before the caches sync; the Ready report follows a moment
        # later, and systemd's READY=1 (which promises a Ready node) waits for it.
        self.reported_ready = trio.Event()
        # False under leader election: the elector renews the Lease (it is the lock).
        self.manage_lease = manage_lease
        # "auto" capacity from the remote cluster, or None for the configured values.
        self.capacity = capacity
        # What the tenant's remote quotas still allow (ak.core.quota_capacity):
        # the advertised figures never exceed it, configured or auto.
        self.limits = limits
        # Whether the kubelet port serves: a condition of its own, never Ready's
        # business (see ak.core.kubelet_status).
        self.kubelet_api = kubelet_api
        # A restart finds the node Ready (the previous AK's report, inside the
        # node monitor's grace period): it stays Ready while the caches sync (a
        # second or two). Reporting "StartingUp" in between made it NotReady,
        # tainted not-ready:NoSchedule, and pods scheduled then failed with a Warning.
        # Bounded: caches that never sync (a permission missing) still say so.
        self._ready_until = -math.inf

    def _restarting(self) -> bool:
        return self._ready_until > -math.inf and trio.current_time() < self._ready_until

    def reference(self) -> Obj:
        """The Node for an Event about it: as registered, or by name until then."""
        return self.node or {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.spec.name},
        }

    def desired(self) -> Obj:
        synced = self.synced is None or self.synced.is_set()
        ready = self.health.ok and synced
        if not ready and self._restarting():
            # Not a verdict yet (remote not contacted, caches syncing): keep the
            # previous AK's Ready. A remote found unreachable is reported at once.
            ready = self.health.ok or self.health.reason == REMOTE_UNKNOWN
        if ready:
            reason, message = "KubeletReady", "actual-kubelets is ready; remote cluster reachable"
        elif not self.health.ok:
            reason, message = self.health.reason, self.health.message
        else:
            reason, message = "StartingUp", "actual-kubelets is syncing its pod caches"
        s = self.spec
        auto = self.capacity()
        limits = self.limits()
        extra: tuple[tuple[str, str, str, str], ...] = ()
        if self.kubelet_api is not None:
            api = self.kubelet_api.status
            extra = ((KUBELET_API_CONDITION, api.status, api.reason, api.message),)
        return node_object(
            name=s.name,
            labels=s.labels,
            taint=s.taint,
            addresses=[
                {"type": "InternalIP", "address": s.internal_ip},
                {"type": "Hostname", "address": s.name},
            ],
            kubelet_port=s.kubelet_port,
            version=s.version,
            capacity=capped(auto or s.capacity, limits),
            allocatable=capped(auto or s.allocatable, limits),
            ready=ready,
            ready_reason=reason,
            ready_message=message,
            now=_now(),
            conditions=extra,
        )

    async def run(self) -> None:
        await self.register()
        async with trio.open_nursery() as nursery:
            if self.manage_lease:
                nursery.start_soon(self._lease_loop)
            nursery.start_soon(self._status_loop)
            nursery.start_soon(self._probe_remote_loop)

    # -- registration ---------------------------------------------------------
    async def register(self) -> None:
        backoff = Backoff(maximum=30)
        while True:
            try:
                self.node = await self._register_once()
                self.registered.set()
                return
            except KubeError as e:
                delay = backoff.next()
                log.warning("registering node %s: %s; retrying in %.0fs", self.spec.name, e, delay)
                await trio.sleep(delay)

    async def _register_once(self) -> Obj:
        node_path = path("nodes", name=self.spec.name)
        try:
            current = await self.local.get(node_path)
        except NotFound:
            desired = self.desired()
            created = await self.local.create(path("nodes"), desired)
            log.info("registered node %s", self.spec.name)
            return await self._patch_status(created, desired) or self._written(created)
        # Existing node (a restart): bring labels and our taint in line, keep the rest.
        if node_is_ready(current):
            self._ready_until = trio.current_time() + STARTUP_GRACE
        desired = self.desired()
        meta_patch: Obj = {"metadata": {"labels": desired["metadata"]["labels"]}}
        taints = [t for t in current.get("spec", {}).get("taints") or [] if t["key"] != TAINT_KEY]
        taints += desired["spec"].get("taints", [])
        if taints != (current.get("spec", {}).get("taints") or []):
            meta_patch["spec"] = {"taints": taints}
        current = await self.local.patch(node_path, meta_patch, STRATEGIC)
        log.info("node %s already registered; updated", self.spec.name)
        return await self._patch_status(current, desired) or self._written(current)

    async def _patch_status(self, current: Obj, desired: Obj) -> Obj | None:
        patch = node_status_patch(current, desired["status"], _now(), STATUS_REPORT_EVERY)
        if patch is None:
            return None
        node_path = path("nodes", name=self.spec.name, subresource="status")
        updated = await self.local.patch(node_path, patch)
        self.node = updated
        return self._written(updated)

    def _written(self, node: Obj) -> Obj:
        """Note what the API server now holds for the node; returns it."""
        if node_is_ready(node):
            self.reported_ready.set()
        return node

    # -- heartbeats -----------------------------------------------------------
    async def _status_loop(self) -> None:
        while True:
            await self._until_changed()
            try:
                current = await self.local.get(path("nodes", name=self.spec.name))
                await self._patch_status(current, self.desired())
            except NotFound:
                log.warning("node %s was deleted; registering it again", self.spec.name)
                await self.register()
            except KubeError as e:
                log.warning("updating node status: %s", e)

    async def _until_changed(self) -> None:
        """Return when remote health or the kubelet API's changes, the caches sync, or
        the check is due."""
        events = [self.health.changed]
        if self.kubelet_api is not None:
            events.append(self.kubelet_api.changed)
        if self.synced is not None and not self.synced.is_set():
            events.append(self.synced)
        with trio.move_on_after(STATUS_CHECK_EVERY):
            async with trio.open_nursery() as nursery:

                async def first(event: trio.Event) -> None:
                    await event.wait()
                    nursery.cancel_scope.cancel()

                for event in events:
                    nursery.start_soon(first, event)

    async def _lease_loop(self) -> None:
        lease_path = node_lease_path(self.spec.name)
        while True:
            try:
                await self._renew(lease_path)
            except KubeError as e:
                log.warning("renewing lease: %s", e)
            await trio.sleep(LEASE_RENEW_EVERY)

    async def _renew(self, lease_path: str) -> None:
        uid = (self.node or {}).get("metadata", {}).get("uid", "")
        lease = lease_object(self.spec.name, uid, duration_seconds=LEASE_DURATION, now=_now())
        try:
            await self.local.patch(lease_path, {"spec": lease["spec"]})
        except NotFound:
            collection = lease_path.rsplit("/", 1)[0]
            with contextlib.suppress(Conflict):
                await self.local.create(collection, lease)

    async def _probe_remote_loop(self) -> None:
        while True:
            await self.probe_remote()
            await trio.sleep(REMOTE_PROBE_EVERY)

    async def probe_remote(self) -> None:
        try:
            with trio.fail_after(REMOTE_PROBE_EVERY * 2):
                await self.remote.probe("/readyz", timeout=REMOTE_PROBE_EVERY)
        except ApiError as e:
            self.health.set(
                False,
                "RemoteNotReady",
                f"remote API server {self.remote.config.server} is not ready: {e}",
            )
        except (KubeError, trio.TooSlowError) as e:
            was_ok = self.health.ok
            self.health.set(
                False,
                "RemoteUnreachable",
                f"remote API server {self.remote.config.server} is unreachable: {type(e).__name__}",
            )
            if was_ok:
                log.warning("remote API server unreachable: %s", e)
        else:
            if not self.health.ok:
                log.info("remote API server %s reachable", self.remote.config.server)
            self.health.set(True, "KubeletReady", "")
