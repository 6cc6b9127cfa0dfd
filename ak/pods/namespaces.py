"""Remote namespaces: created from the template on first use, kept in step, deleted when empty."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import trio

from ak.core import netpol
from ak.core.errors import Notice, TranslationError
from ak.core.names import node_label_value, remote_namespace
from ak.core.namespaces import (
    Template,
    limit_range_object,
    namespace_object,
    namespace_patch,
    quota_object,
    spec_differs,
)
from ak.core.types import Obj
from ak.kube.client import KubeClient, path
from ak.kube.errors import Conflict, Forbidden, NotFound
from ak.kube.shared import View

log = logging.getLogger(__name__)

LINGER = 30.0
"""Seconds an emptied remote namespace is kept before it is deleted. Scaling to
zero and back is common; deleting at once made the next pod wait for the old
namespace to finish terminating (8-9 s of RemoteNamespaceTerminating)."""


def is_deleting(obj: Obj | None) -> bool:
    """The object has a deletionTimestamp: it is on its way out."""
    return obj is not None and bool(obj["metadata"].get("deletionTimestamp"))


class RemoteNamespaces:
    def __init__(
        self,
        remote: KubeClient,
        node_name: str,
        template: Template,
        informer: View,
        *,
        linger: float = LINGER,
        guard_claims: bool = False,
    ) -> None:
        self.remote = remote
        self.node_name = node_name
        self.template = template
        self.informer = informer
        self.linger = linger
        self._unused_since: dict[str, float] = {}  # local namespace -> trio time
        # UIDs of remote namespaces whose quota and limits match the template. The
        # template is fixed for AK's lifetime, so one check per namespace (and per
        # AK start) is enough; checking on every sync cost two GETs per pod deleted.
        self._policies_ok: set[str] = set()
        # With storage on, a namespace is never deleted while the remote API
        # server (not a cache) shows a claim in it: claims hold data.
        self.guard_claims = guard_claims

    # -- the pod preparer (ak/pods/prepare.py) -------------------------------------
    @property
    def synced(self) -> trio.Event:
        return self.informer.synced

    async def prepare(self, local: Obj, desired: Obj, notices: list[Notice]) -> Obj:
        await self.ensure(local["metadata"]["namespace"])
        return desired

    async def created(self, local: Obj, remote: Obj) -> None:
        pass

    def track(self, local: Obj) -> None:
        pass  # a namespace is in use while the pod controller knows pods in it

    def release(self, key: tuple[str, str]) -> None:
        pass

    def tracked_all(self) -> None:
        pass

    def name(self, local_ns: str) -> str:
        return remote_namespace(self.node_name, local_ns)

    async def ensure(self, local_ns: str) -> None:
        """The remote namespace exists (with its quota and limits) before a pod goes in."""
        rns = self.name(local_ns)
        existing = self.informer.get("", rns)
        if existing is not None:
            if is_deleting(existing):
                raise TranslationError(
                    "RemoteNamespaceTerminating",
                    f"remote namespace {rns} is still being deleted",
                    settling=True,
                )
            return
        try:
            created = await self.remote.create(
                path("namespaces"), namespace_object(self.node_name, local_ns, self.template)
            )
            log.info("remote namespace %s created for %s", rns, local_ns)
        except Conflict:
            return
        await self._ensure_policies(rns, created["metadata"].get("uid", ""), local_ns)

    async def sync(self, local_ns: str, in_use: bool) -> float | None:
        """Keep a used namespace in step with the template; delete one unused for
        ``linger`` seconds. Returns when to look again, if it must."""
        rns = self.name(local_ns)
        existing = self.informer.get("", rns)
        if existing is None or is_deleting(existing):
            self._unused_since.pop(local_ns, None)
            if existing is not None:
                self._policies_ok.discard(existing["metadata"].get("uid", ""))
            return None
        if not in_use:
            now = trio.current_time()
            since = self._unused_since.setdefault(local_ns, now)
            if now - since < self.linger:
                return since + self.linger - now
            del self._unused_since[local_ns]
            if self.guard_claims and await self._holds_claims(rns):
                log.info("remote namespace %s kept: it holds PersistentVolumeClaims", rns)
                return None
            self._policies_ok.discard(existing["metadata"].get("uid", ""))
            with contextlib.suppress(NotFound):
                await self.remote.delete(path("namespaces", name=rns))
                log.info("remote namespace %s deleted: no pods for %.0f s", rns, now - since)
            return None
        self._unused_since.pop(local_ns, None)
        patch = namespace_patch(existing, self.template)
        if patch is not None:
            await self.remote.patch(path("namespaces", name=rns), patch)
            log.info("remote namespace %s updated to the template", rns)
        await self._ensure_policies(rns, existing["metadata"].get("uid", ""), local_ns)
        return None

    async def _holds_claims(self, rns: str) -> bool:
        try:
            found = await self.remote.get(
                path("persistentvolumeclaims", namespace=rns), {"limit": 1}
            )
        except (NotFound, Forbidden):
            return False  # without the right to read claims AK never made one there
        return bool(found.get("items"))

    async def _ensure_policies(self, rns: str, uid: str, local_ns: str) -> None:
        if uid and uid in self._policies_ok:
            return
        for resource, desired in (
            ("resourcequotas", quota_object(rns, self.template, node_label_value(self.node_name))),
            ("limitranges", limit_range_object(rns, self.template)),
        ):
            await self._ensure_one(rns, resource, desired)
        try:
            await self._ensure_isolation(rns, local_ns)
        except Forbidden as e:
            # Fail closed: a pod of a shared remote cluster does not run unisolated
            # because AK's remote RBAC predates NetworkPolicies.
            raise TranslationError(
                "RemoteIsolationFailed",
                f"cannot write the isolation NetworkPolicy in remote namespace {rns}: "
                f"{e.message}; apply packaging/remote-rbac.yaml (and "
                "remote-confinement.yaml) again, or set [namespaces.isolation] enabled = false",
            ) from e
        if uid:
            self._policies_ok.add(uid)

    async def _ensure_isolation(self, rns: str, local_ns: str) -> None:
        """The default NetworkPolicies (``ak/core/netpol.py``), when isolation is on;
        when it is off, those AK made before are removed (and nothing else)."""
        t = self.template
        label = node_label_value(self.node_name)
        wanted = netpol.isolation_policies(rns, label, local_ns, t.isolation_peers)
        for name, desired in wanted.items():
            await self._ensure_one(
                rns,
                "networkpolicies",
                desired if t.isolation else None,
                name=name,
                group_version=netpol.GROUP_VERSION,
                differs=netpol.default_needs_update,
                owned=lambda obj: netpol.is_default_policy(obj, label),
            )

    async def _ensure_one(
        self,
        rns: str,
        resource: str,
        desired: Obj | None,
        *,
        name: str = "actual-kubelets",
        group_version: str = "v1",
        differs: Callable[[Obj, Obj], bool] = spec_differs,
        owned: Callable[[Obj], bool] = lambda obj: True,
    ) -> None:
        one = path(resource, namespace=rns, name=name, group_version=group_version)
        try:
            current = await self.remote.get(one)
        except NotFound:
            current = None
        if current is not None and not owned(current):
            log.warning("remote %s %s/%s was not made by AK: left alone", resource, rns, name)
            return
        if desired is None:
            if current is not None:
                with contextlib.suppress(NotFound):
                    await self.remote.delete(one)
            return
        if current is None:
            with contextlib.suppress(Conflict):
                await self.remote.create(
                    path(resource, namespace=rns, group_version=group_version), desired
                )
        elif differs(desired, current):
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.remote.replace(one, desired)
