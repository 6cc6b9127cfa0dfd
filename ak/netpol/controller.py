"""The tenant's NetworkPolicies on the remote side, and its ingress rules at the pod addresses.

What is decided is pure (``ak/core/netpol.py``); here it is kept in step:

* a local NetworkPolicy selecting at least one (not finished) pod bound to
  the node is claimed for those pods in a ``Replicator``, as Services are
  (``ak/services/controller.py``): copied into their remote namespace,
  kept in step with the policy and with the LOCAL namespaces' labels its
  namespaceSelectors are resolved against, deleted when no pod of the node
  is selected any more or the policy goes;
* each remote pod carries ``LABEL_INGRESS_COVERED`` exactly while one of
  the copies with Ingress in its namespace selects it, so the default
  isolation policy steps aside for it (judged on the remote copies: the
  label follows a copy's creation and precedes its deletion);
* what a copy cannot carry is a Warning Event on the local policy, once per
  policy incarnation and set of problems;
* ``admits``: the check the pod proxy makes for each new connection.

Reading every local NetworkPolicy and Namespace (and, with pod addresses,
every local pod's address and labels) is more than a kubelet identity may:
the local cluster grants it with ``packaging/local-network-policies.yaml``
or the Helm chart. Until those reads answer, no copy is made, and
connections to pod addresses are refused (it cannot be told which would be
admitted).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections import defaultdict
from collections.abc import Callable
from urllib.parse import urlsplit

import trio

from ak.core import netpol, ownership
from ak.core.errors import TranslationError
from ak.core.labels import LABEL_NODE, LABEL_REPLICA, REPLICA_VALUE
from ak.core.local_apiserver import Endpoint
from ak.core.names import remote_namespace
from ak.core.namespaces import Template
from ak.core.status import TERMINAL_PHASES
from ak.core.types import Obj, PodKey
from ak.deps.replicator import Replicator, Source
from ak.events import EventRecorder
from ak.kube.client import KubeClient, path
from ak.kube.errors import NotFound
from ak.kube.informer import Informer
from ak.kube.ondemand import OnDemand
from ak.metrics import REPLICATED
from ak.pods.controller import PodController
from ak.pods.remote import RemoteCluster
from ak.services.controller import ServiceController
from ak.sync.queue import WorkQueue

log = logging.getLogger(__name__)

PolicyKey = tuple[str, str]  # (local namespace, name)
COLLECTION = "/apis/networking.k8s.io/v1/networkpolicies"


class PolicyCopies:
    """The ``CopySpec`` of NetworkPolicy copies."""

    delete_unused = True

    def __init__(self, owner: NetworkPolicyController) -> None:
        self.owner = owner

    def source(self, key: PolicyKey) -> Source:
        return Source(key[0], "networkpolicies", key[1], key[1], netpol.GROUP_VERSION)

    def desired(self, key: PolicyKey, source: Obj, remote_namespace: str) -> Obj:
        return self.owner.translate(source, remote_namespace).policy

    def is_own(self, existing: Obj, key: PolicyKey) -> bool:
        return netpol.is_own_policy(existing, self.owner.node_label, key[0])

    needs_update = staticmethod(netpol.policy_needs_update)

    def needs_replace(self, desired: Obj, current: Obj) -> bool:
        return False

    def conflict(self, key: PolicyKey, remote_namespace: str) -> TranslationError:
        message = (
            f"a NetworkPolicy named {key[1]!r} already exists in remote namespace "
            f"{remote_namespace} and was not made by AK; it is left alone"
        )
        self.owner.tell_later(key, netpol.REASON_CONFLICT, message)
        return TranslationError(netpol.REASON_CONFLICT, message)


def _peer_view(pod: Obj) -> Obj:
    """What ``admits`` reads of a local pod: only that is cached for every pod."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    return {
        "metadata": {
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "labels": meta.get("labels") or {},
            "resourceVersion": meta.get("resourceVersion"),
        },
        "spec": {"hostNetwork": bool(spec.get("hostNetwork"))},
        "status": {"podIPs": status.get("podIPs") or [], "phase": status.get("phase")},
    }


def _labels(pod: Obj | None) -> dict[str, str] | None:
    return None if pod is None else (pod["metadata"].get("labels") or {})


def _counts(pod: Obj | None) -> bool:
    return pod is not None and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES


class NetworkPolicyController:
    def __init__(
        self,
        local: KubeClient,
        remote: KubeClient,
        node_name: str,
        node_label: str,
        *,
        pods: PodController,
        remote_pods: RemoteCluster,
        services: ServiceController,
        events: EventRecorder,
        template: Template,
        endpoint: Endpoint,
        peers: bool = False,
    ) -> None:
        self.node_name = node_name
        self.node_label = node_label
        self.pods = pods
        self.remote_pods = remote_pods
        self.services = services
        self.events = events
        self.template = template
        self.endpoint = endpoint
        self.remote = remote
        self.local_server = local.config.server
        self.policies = Informer(local, COLLECTION, handler=self._on_local, name="local policies")
        self.namespaces = Informer(
            local, "/api/v1/namespaces", handler=self._on_namespace, name="local namespaces"
        )
        self.copies = Informer(
            remote,
            COLLECTION,
            label_selector=f"{LABEL_NODE}={node_label},{LABEL_REPLICA}={REPLICA_VALUE}",
            handler=self._on_copy,
            name="remote policies",
        )
        # Every local pod's address and labels: who a peer of a pod address is.
        self.peers: Informer | None = None
        self._by_ip: dict[str, tuple[str, str]] = {}
        if peers:
            self.peers = Informer(
                local,
                "/api/v1/pods",
                handler=self._on_peer,
                name="local pod addresses",
                transform=_peer_view,
            )
        REPLICATED.labels("NetworkPolicy").set_function(self.copies.size)
        # The copies' watch is open only while there are copies or claims.
        self.copies_watch = OnDemand(
            self.copies, lambda: self.copies.size() > 0 or bool(self.replicator.users)
        )
        self.replicator: Replicator[PolicyKey] = Replicator(
            local,
            remote,
            node_name,
            PolicyCopies(self),
            lambda key, rns: self.copies.get(rns, key[1]),
            name="network-policies",
            lookup=lambda key: self.policies.get(*key),
            on_claim=self.copies_watch.poke,
        )
        self.by_ns: dict[str, set[str]] = defaultdict(set)
        # The policies as objects, for the check on every new connection: decoding
        # them from the informer's cache cost ~20 µs each per connection.
        self._decoded: dict[PolicyKey, Obj] = {}
        self.copies_by_ns: dict[str, set[str]] = defaultdict(set)  # remote ns -> names
        self.queue: WorkQueue[PolicyKey] = WorkQueue("policy-selection")
        self.cover_queue: WorkQueue[PodKey] = WorkQueue("policy-cover")
        self._told: dict[PolicyKey, tuple[str, tuple[str, ...]]] = {}
        self._later, self._later_in = trio.open_memory_channel[tuple[PolicyKey, str, str]](1000)

    # -- translation -----------------------------------------------------------------
    def context(self) -> netpol.Context:
        t = self.template
        addresses: set[str] = set()
        ports = {self.endpoint.port, 443}
        url = urlsplit(self.local_server)
        for host in (url.hostname, self.endpoint.host):
            if host and _is_ip(host):
                addresses.add(host)
        if url.port:
            ports.add(url.port)
        kubernetes = self.services.local_services.get("default", "kubernetes")
        if kubernetes is not None:
            ip = (kubernetes.get("spec") or {}).get("clusterIP")
            if ip and _is_ip(ip):
                addresses.add(ip)
        return netpol.Context(
            node_label=self.node_label,
            namespaces={
                ns["metadata"]["name"]: ns["metadata"].get("labels") or {}
                for ns in self.namespaces.values()
            },
            any_source=t.isolation_peers if t.isolation else None,
            api_addresses=frozenset(addresses),
            api_ports=frozenset(ports),
            endpoint=self.endpoint,
            dns_peers=t.isolation_dns,
        )

    def translate(self, local: Obj, rns: str) -> netpol.Translation:
        return netpol.to_remote_policy(local, remote_namespace=rns, ctx=self.context())

    # -- what changed ------------------------------------------------------------------
    def _on_local(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if new is None:
            self.by_ns[key[0]].discard(key[1])
            self._decoded.pop(key, None)
        else:
            self.by_ns[key[0]].add(key[1])
            self._decoded[key] = new
        self.queue.add(key)

    def _on_namespace(self, old: Obj | None, new: Obj | None) -> None:
        # A namespace's labels decide which namespaceSelectors select it: every
        # claimed policy is looked at again (only the claimed ones have copies).
        if _labels(old) != _labels(new):
            for key in list(self.replicator.users):
                self.replicator.queue.add(key)

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
        meta = obj["metadata"]
        rns = meta.get("namespace", "")
        if new is None:
            self.copies_by_ns[rns].discard(meta["name"])
        else:
            self.copies_by_ns[rns].add(meta["name"])
        local_ns = ownership.local_namespace(obj, self.node_name)
        if local_ns is None:
            return
        self.replicator.queue.add((local_ns, meta["name"]))
        for name in list(self.remote_pods.remote_by_ns.get(local_ns, ())):
            self.cover_queue.add((local_ns, name))

    def on_remote_pod(self, key: PodKey, old: Obj | None, new: Obj | None) -> None:
        if new is not None and _labels(old) != _labels(new):
            self.cover_queue.add(key)

    def _on_peer(self, old: Obj | None, new: Obj | None) -> None:
        for pod, add in ((old, False), (new, True)):
            if pod is None or pod["spec"].get("hostNetwork"):
                continue  # a host-network pod's address is its node's: not a pod peer
            key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
            for entry in pod["status"].get("podIPs") or []:
                ip = entry.get("ip")
                if not ip:
                    continue
                if add and _counts(pod):
                    self._by_ip[ip] = key
                elif self._by_ip.get(ip) == key:
                    del self._by_ip[ip]

    def tell_later(self, key: PolicyKey, reason: str, message: str) -> None:
        with contextlib.suppress(trio.WouldBlock):
            self._later.send_nowait((key, reason, message))

    # -- run -----------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            informers = [self.policies, self.namespaces]
            if self.peers is not None:
                informers.append(self.peers)
            for informer in informers:
                nursery.start_soon(informer.run)
            nursery.start_soon(self.copies_watch.run)
            for informer in (self.policies, self.namespaces, self.copies):
                await informer.synced.wait()
            await self.pods.synced.wait()
            await self.services.local_services.synced.wait()
            for policy in self.policies.values():
                meta = policy["metadata"]
                self._select((meta["namespace"], meta["name"]), policy)
            self.replicator.gc_allowed.set()
            for copy in self.copies.values():
                self._on_copy(None, copy)
            for pod in self.pods.local_pods.values():
                self.cover_queue.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
            nursery.start_soon(self.queue.run_workers, 2, self._reselect)
            nursery.start_soon(self.cover_queue.run_workers, 2, self._cover)
            nursery.start_soon(self._tell_later)
            await self.replicator.run(2)

    def _select(self, key: PolicyKey, policy: Obj | None) -> bool:
        """Claim the policy for the node's pods it selects, unclaim the rest; whether used."""
        matched: set[PodKey] = set()
        if policy is not None:
            for name in list(self.pods.local_by_ns.get(key[0], ())):
                pod = self.pods.local_pods.get(key[0], name)
                if _counts(pod) and pod is not None and netpol.selects(policy, _labels(pod) or {}):
                    matched.add((key[0], name))
        return self.replicator.claim_exactly(key, matched)

    async def _reselect(self, key: PolicyKey) -> float | None:
        policy = self.policies.get(*key)
        used = self._select(key, policy)
        if policy is None:
            self._told.pop(key, None)
        elif used:
            problems = self.translate(policy, remote_namespace(self.node_name, key[0])).problems
            await self._tell(key, policy, netpol.REASON_UNSUPPORTED, tuple(problems))
        return None

    async def _tell(
        self, key: PolicyKey, policy: Obj, reason: str, problems: tuple[str, ...]
    ) -> None:
        told = (policy["metadata"].get("uid", ""), problems)
        if self._told.get(key) == told or not problems:
            self._told[key] = told
            return
        self._told[key] = told
        message = "; ".join(problems)
        log.warning("network policy %s/%s: %s", *key, message)
        involved = {**policy, "apiVersion": netpol.API_VERSION, "kind": "NetworkPolicy"}
        await self.events.record(involved, reason, message)

    async def _tell_later(self) -> None:
        async for key, reason, message in self._later_in:
            policy = self.policies.get(*key)
            if policy is not None:
                await self._tell(key, policy, reason, (message,))

    async def _cover(self, key: PodKey) -> float | None:
        """The remote pod's ``LABEL_INGRESS_COVERED`` in step with the copies."""
        pod = self.remote_pods.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return None
        rns = pod["metadata"]["namespace"]
        copies = [c for n in list(self.copies_by_ns.get(rns, ())) if (c := self.copies.get(rns, n))]
        patch = netpol.covered_patch(pod, netpol.covered(_labels(pod) or {}, copies))
        if patch is None:
            return None
        patch["metadata"]["uid"] = pod["metadata"]["uid"]  # only that very pod
        try:
            await self.remote.patch(path("pods", namespace=rns, name=key[1]), patch)
        except NotFound:
            return None
        log.info("remote pod %s/%s: %s", rns, key[1], patch["metadata"]["labels"])
        return None

    # -- AK's check at the pod addresses -----------------------------------------------
    def admits(self, key: PodKey, port: int, peer_ip: str) -> bool:
        """Whether the local ingress policies let ``peer_ip`` reach ``port`` of pod ``key``."""
        if not (self.policies.synced.is_set() and self.namespaces.synced.is_set()):
            return False
        if self.peers is None or not self.peers.synced.is_set():
            return False
        pod = self.pods.local_pods.get(*key)
        if pod is None:
            return False
        policies = [p for n in self.by_ns.get(key[0], ()) if (p := self._decoded.get((key[0], n)))]
        if not policies:
            return True
        return netpol.admits(policies, pod, port, self.peer(peer_ip))

    def peer(self, ip: str) -> netpol.Peer:
        ip = _unmapped(ip)
        found = self._by_ip.get(ip)
        if found is None:
            return netpol.Peer(ip)
        ns = self.namespaces.get("", found[0])
        pod = self.peers.get(*found) if self.peers is not None else None
        return netpol.Peer(
            ip,
            found[0],
            _labels(pod) or {},
            (ns or {}).get("metadata", {}).get("labels") or {},
        )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _unmapped(ip: str) -> str:
    """An IPv4 peer of a dual-stack socket shows as ``::ffff:a.b.c.d``."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


Admits = Callable[[PodKey, int, str], bool]
