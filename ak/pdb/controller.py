"""Reflect local PodDisruptionBudgets selecting pods on the AK node into the remote namespaces.

As Services are (``ak/services/controller.py``): one collection-wide watch
of the local PDBs, each claimed in a ``Replicator`` for the node's pods its
selector picks; the copy is created, kept in step (with the PDB, with its
status, whose ``expectedPods`` follows the controllers' scale, and with the
number of the node's pods it picks) and deleted when the last pod goes or
the PDB does. What the copy says is pure (``ak/core/pdb.py``).

Listing local PDBs is more than a kubelet identity may: the grant is
``packaging/local-network-policies.yaml`` (or the Helm chart), which also
carries the NetworkPolicy reads, so PDBs are reflected where those are
(``[pods] networkPolicies``).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict

import trio

from ak.core import ownership, pdb
from ak.core.errors import TranslationError
from ak.core.labels import LABEL_NODE, LABEL_REPLICA, REPLICA_VALUE
from ak.core.services import is_own_service as is_own_copy
from ak.core.status import TERMINAL_PHASES
from ak.core.types import Obj, PodKey
from ak.deps.replicator import Replicator, Source
from ak.events import EventRecorder
from ak.kube.client import KubeClient
from ak.kube.informer import Informer
from ak.kube.ondemand import OnDemand
from ak.metrics import REPLICATED
from ak.pods.controller import PodController
from ak.sync.queue import WorkQueue

log = logging.getLogger(__name__)

BudgetKey = tuple[str, str]  # (local namespace, name)
COLLECTION = "/apis/policy/v1/poddisruptionbudgets"


class BudgetCopies:
    """The ``CopySpec`` of PDB copies."""

    delete_unused = True

    def __init__(self, owner: DisruptionBudgetController) -> None:
        self.owner = owner

    def source(self, key: BudgetKey) -> Source:
        return Source(key[0], "poddisruptionbudgets", key[1], key[1], pdb.GROUP_VERSION)

    def desired(self, key: BudgetKey, source: Obj, remote_namespace: str) -> Obj:
        return pdb.to_remote_pdb(
            source,
            node_label=self.owner.node_label,
            remote_namespace=remote_namespace,
            pods_here=len(self.owner.replicator.users.get(key, ())),
        )

    def is_own(self, existing: Obj, key: BudgetKey) -> bool:
        return is_own_copy(existing, self.owner.node_label, key[0])

    needs_update = staticmethod(pdb.pdb_needs_update)

    def needs_replace(self, desired: Obj, current: Obj) -> bool:
        return False

    def conflict(self, key: BudgetKey, remote_namespace: str) -> TranslationError:
        message = (
            f"a PodDisruptionBudget named {key[1]!r} already exists in remote namespace "
            f"{remote_namespace} and was not made by AK; it is left alone"
        )
        self.owner.conflicts.send_nowait((key, message))
        return TranslationError(pdb.REASON_CONFLICT, message)


def _counts(pod: Obj | None) -> bool:
    return pod is not None and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES


def _labels(pod: Obj | None) -> dict[str, str] | None:
    return None if pod is None else (pod["metadata"].get("labels") or {})


class DisruptionBudgetController:
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        node_name: str,
        node_label: str,
        *,
        pods: PodController,
        events: EventRecorder,
    ) -> None:
        self.node_name = node_name
        self.node_label = node_label
        self.pods = pods
        self.events = events
        self.local_budgets = Informer(
            local, COLLECTION, handler=self._on_local, name="local poddisruptionbudgets"
        )
        self.copies = Informer(
            remote,
            COLLECTION,
            label_selector=f"{LABEL_NODE}={node_label},{LABEL_REPLICA}={REPLICA_VALUE}",
            handler=self._on_copy,
            name="remote poddisruptionbudgets",
        )
        REPLICATED.labels("PodDisruptionBudget").set_function(self.copies.size)
        # The copies' watch is open only while there are copies or claims.
        self.copies_watch = OnDemand(
            self.copies, lambda: self.copies.size() > 0 or bool(self.replicator.users)
        )
        self.replicator: Replicator[BudgetKey] = Replicator(
            local,
            remote,
            node_name,
            BudgetCopies(self),
            lambda key, rns: self.copies.get(rns, key[1]),
            name="poddisruptionbudgets",
            lookup=lambda key: self.local_budgets.get(*key),
            on_claim=self.copies_watch.poke,
        )
        self.by_ns: dict[str, set[str]] = defaultdict(set)
        self.queue: WorkQueue[BudgetKey] = WorkQueue("pdb-selection")
        # Conflicts are found where the replicator cannot await: told by a task
        # of their own, once per PDB incarnation.
        self.conflicts, self._conflicts_in = trio.open_memory_channel[tuple[BudgetKey, str]](
            math.inf
        )
        self._told_conflict: dict[BudgetKey, str] = {}

    # -- what changed ------------------------------------------------------------------
    def _on_local(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if new is None:
            self.by_ns[key[0]].discard(key[1])
        else:
            self.by_ns[key[0]].add(key[1])
        self.queue.add(key)  # status changes too: expectedPods follows scaling

    def on_pod(self, old: Obj | None, new: Obj | None) -> None:
        if _labels(old) == _labels(new) and _counts(old) == _counts(new):
            return
        ns = (new or old or {})["metadata"]["namespace"]
        for name in self.by_ns.get(ns, ()):
            self.queue.add((ns, name))

    def _on_copy(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        key = ownership.local_key(obj, self.node_name)
        if key is not None:
            self.replicator.queue.add(key)

    # -- run -----------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.local_budgets.run)
            nursery.start_soon(self.copies_watch.run)
            await self.local_budgets.synced.wait()
            await self.copies.synced.wait()
            await self.pods.synced.wait()
            # Every used PDB claimed before anything unclaimed may be deleted.
            for budget in self.local_budgets.values():
                meta = budget["metadata"]
                self._select((meta["namespace"], meta["name"]), budget)
            self.replicator.gc_allowed.set()
            for copy in self.copies.values():
                self._on_copy(None, copy)
            nursery.start_soon(self.queue.run_workers, 1, self._reselect)
            nursery.start_soon(self._tell_conflicts)
            await self.replicator.run(2)

    def _select(self, key: BudgetKey, budget: Obj | None) -> None:
        """Claim the PDB for the node's pods it selects, unclaim the rest."""
        matched: set[PodKey] = set()
        if budget is not None:
            for name in list(self.pods.local_by_ns.get(key[0], ())):
                pod = self.pods.local_pods.get(key[0], name)
                if _counts(pod) and pod is not None and pdb.selects(budget, pod):
                    matched.add((key[0], name))
        # Always looked at again: the figure follows the status and the count of pods.
        self.replicator.claim_exactly(key, matched)

    async def _reselect(self, key: BudgetKey) -> float | None:
        budget = self.local_budgets.get(*key)
        self._select(key, budget)
        if budget is None:
            self._told_conflict.pop(key, None)
        return None

    async def _tell_conflicts(self) -> None:
        async for key, message in self._conflicts_in:
            budget = self.local_budgets.get(*key)
            uid = budget["metadata"].get("uid", "") if budget is not None else ""
            if budget is not None and self._told_conflict.get(key) != uid:
                self._told_conflict[key] = uid
                log.warning("poddisruptionbudget %s/%s: %s", key[0], key[1], message)
                await self.events.record(budget, pdb.REASON_CONFLICT, message)
