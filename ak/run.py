"""``ak run``: connect to both clusters and supervise AK's long-running tasks."""

from __future__ import annotations

import dataclasses
import gc
import logging
import secrets
import signal
import socket
from collections.abc import Callable
from datetime import datetime
from functools import partial
from urllib.parse import urlsplit

import trio

from ak import __version__
from ak.config import Config
from ak.core.local_apiserver import local_endpoint
from ak.core.names import node_label_value
from ak.core.namespaces import Template
from ak.core.placement import Allowed, Placement
from ak.core.pod_addresses import parse_range
from ak.core.types import Obj, PodKey
from ak.deps.controller import DependencyController
from ak.events import EventRecorder
from ak.kube import config as kubeconfig
from ak.kube.client import KubeClient
from ak.kube.registry import Informers
from ak.kubelet import api as kubelet_api
from ak.kubelet.health import KubeletAPIHealth
from ak.metrics_server import serve_metrics
from ak.netpol.controller import NetworkPolicyController
from ak.node.capacity import RemoteCapacity
from ak.node.controller import NodeController, NodeSpec, RemoteHealth
from ak.node.leader import LeaderElector, LeadershipLost
from ak.node.lease import read_last_heartbeat
from ak.node.quotas import RemoteQuotas
from ak.pdb.controller import DisruptionBudgetController
from ak.pods.controller import KubeLocalWrites, PodController
from ak.pods.event_mirror import EventMirror
from ak.pods.remote import PodSettings, RemoteCluster
from ak.proxy.addresses import PodAddresses
from ak.proxy.server import PodProxy
from ak.services.controller import ServiceController
from ak.storage.controller import StorageController
from ak.sync.supervisor import Supervisor
from ak.systemd import SystemdNotifier
from ak.tokens.controller import TokenController, TokenSettings

log = logging.getLogger(__name__)


def route_ip(server: str) -> str:
    """The address this host uses towards ``server``: what the local API server
    can most likely reach AK's kubelet port on."""
    host = urlsplit(server).hostname or "127.0.0.1"
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, 443))  # UDP connect sends nothing
            addr: str = s.getsockname()[0]
            return addr
    except OSError:
        return "127.0.0.1"


def token_settings(config: Config, local_server: str) -> TokenSettings:
    """Settings from AK's config; ``local_server`` is the local kubeconfig's server URL.

    Without ``local.apiserverHost`` remote pods are pointed at the host of that
    URL (and its port, unless ``local.apiserverPort`` is set). That is right
    when AK reaches the local API server the way remote pods can, e.g. on a
    public or VPC address; in-cluster it is the local Service IP, which the
    remote cluster cannot reach, hence the warning.
    """
    local = config.local
    port_set = config.source.get("local.apiserver_port", "default") != "default"
    endpoint = local_endpoint(
        local_server, local.apiserver_host, local.apiserver_port if port_set else None
    )
    if not local.apiserver_host:
        log.log(
            logging.WARNING if not local.kubeconfig else logging.INFO,
            "local.apiserverHost is not set: remote pods reach the local API server at %s "
            "(from the local %s)",
            endpoint,
            "kubeconfig" if local.kubeconfig else "in-cluster config; set it",
        )
    return TokenSettings(
        node_name=config.node.name,
        node_label=node_label_value(config.node.name),
        endpoint=endpoint,
        max_age=float(config.pods.token_max_age),
    )


class Provider:
    """Everything ``ak run`` runs, wired together; tests drive it in-process too."""

    def __init__(
        self,
        config: Config,
        local: KubeClient,
        remote: KubeClient,
        *,
        manage_lease: bool = True,
    ) -> None:
        """``manage_lease``: False when a leader elector holds the node Lease."""
        self.config = config
        self.local = local
        self.remote = remote
        node = config.node
        label = node_label_value(node.name)
        self.health = RemoteHealth()
        # The shared remote watches, and the changes parts follow (wired at the end).
        self.informers = informers = Informers()
        self.events = EventRecorder(local, node.name)
        self.kubelet_health = KubeletAPIHealth(report=self._node_warning)
        self.deps = DependencyController(local, remote, node.name, label, informers=informers)
        tokens = token_settings(config, local.config.server)
        # Tokens ask whether a pod's twin is gone; the pod provider is made
        # below, with the tokens among its preparers.
        self.tokens = TokenController(local, remote, tokens, informers=informers, twin=self._twin)
        # Claims live in the pod provider's remote namespaces, and a namespace
        # holding claims is kept: the two refer to each other.
        self.storage = (
            StorageController(
                local,
                remote,
                node.name,
                label,
                ensure_namespace=self._ensure_namespace,
                namespace_changed=self._namespace_changed,
                events=self.events,
                allowed=config.pods.storage_remote_classes,
            )
            if config.pods.storage
            else None
        )
        template = Template(**dataclasses.asdict(config.namespaces))
        self.remote_pods = RemoteCluster(
            remote,
            PodSettings(
                node_name=node.name,
                node_label=label,
                storage=config.pods.storage,
                extra_env=[{"name": k, "value": v} for k, v in config.pods.env],
                namespace_template=template,
                placement=Placement(
                    config.pods.node_selector,
                    config.pods.tolerations,
                    config.pods.runtime_class_name,
                    Allowed(config.pods.allowed_node_labels, config.pods.allowed_tolerations),
                ),
            ),
            preparers=[self.deps, self.tokens, *([self.storage] if self.storage else [])],
            informers=informers,
            leftovers=self._identities_left,
            holds_volumes=self.storage.holds_volumes if self.storage else None,
        )
        self.addresses = (
            PodAddresses(parse_range(config.pods.address_range))
            if config.pods.address_range
            else None
        )
        self.pods = PodController(
            local,
            node.name,
            self.remote_pods,
            KubeLocalWrites(local, self.events),
            informers=informers,
            workers=config.pods.workers,
            addresses=self.addresses,
        )
        self.services = ServiceController(
            local, remote, node.name, label, pods=self.pods, events=self.events, informers=informers
        )
        self.policies = (
            NetworkPolicyController(
                local,
                remote,
                node.name,
                label,
                pods=self.pods,
                remote_pods=self.remote_pods,
                services=self.services,
                events=self.events,
                template=template,
                endpoint=tokens.endpoint,
                peers=self.addresses is not None,
            )
            if config.pods.network_policies
            else None
        )
        # The same local grant reads PDBs (packaging/local-network-policies.yaml).
        self.budgets = (
            DisruptionBudgetController(
                local, remote, node.name, label, pods=self.pods, events=self.events
            )
            if config.pods.network_policies
            else None
        )
        self.proxy = (
            PodProxy(
                remote,
                node.name,
                self.addresses,
                pods=self.pods,
                services=self.services,
                events=self.events,
                admits=self.policies.admits if self.policies is not None else None,
            )
            if self.addresses is not None
            else None
        )
        self.capacity = (
            RemoteCapacity(remote, label, node.auto_capacity_fraction, node.auto_capacity_selector)
            if node.auto_capacity
            else None
        )
        self.quotas = (
            RemoteQuotas(remote, label, template.quota, informers=informers)
            if template.quota
            else None
        )
        self.node = NodeController(
            local,
            remote,
            NodeSpec(
                name=node.name,
                labels=dict(node.labels),
                taint=node.taint,
                internal_ip=node.internal_ip or route_ip(local.config.server),
                kubelet_port=node.kubelet_port,
                version=f"v{__version__}-ak",
                capacity=dict(node.capacity),
                allocatable=dict(node.allocatable),
            ),
            self.health,
            synced=self.pods.synced,
            capacity=self.capacity.current if self.capacity else lambda: None,
            limits=self.quotas.limits if self.quotas else dict,
            kubelet_api=self.kubelet_health,
            manage_lease=manage_lease,
        )
        self.kubelet_api = kubelet_api.from_config(
            config,
            local,
            remote,
            self.node.spec.internal_ip,
            local_pods=self.pods.local_pods,
            remote_pods=self.remote_pods.remote_pods,
            health=self.kubelet_health,
        )
        self.event_mirror = EventMirror(local, remote, self.pods, self.remote_pods, node.name)
        self._follow(informers)

    def _follow(self, informers: Informers) -> None:
        """Who follows whose changes: the one place parts subscribe to each other."""
        informers.local_pods.follow("services", self.services.on_pod)
        if self.policies is not None:
            informers.local_pods.follow("network policies", self.policies.on_pod)
            informers.remote_pods.follow("network policies", self.policies.on_remote_pod)
        if self.budgets is not None:
            informers.local_pods.follow("disruption budgets", self.budgets.on_pod)
        if self.proxy is not None:
            informers.local_pods.follow("pod proxy", self.proxy.on_pod)
            informers.local_services.follow("pod proxy", self.proxy.on_service)
        informers.remote_namespaces.follow("event mirror", self.event_mirror.on_namespace)
        for line in informers.describe():
            log.debug("informers: %s", line)

    async def run(self, mirrored_before: datetime | None = None) -> None:
        """``mirrored_before``: the previous AK's last heartbeat, if known (its
        Events were mirrored by it)."""
        async with trio.open_nursery() as nursery:
            sup = Supervisor(nursery)
            sup.start("node", self.node.run)
            sup.start("dependency-sync", self.deps.run)
            sup.start("pod-sync", self.pods.run)
            sup.start("service-sync", self.services.run)
            if self.policies is not None:
                sup.start("network-policy-sync", self.policies.run)
            if self.budgets is not None:
                sup.start("disruption-budget-sync", self.budgets.run)
            if self.storage is not None:
                sup.start("storage", self.storage.run)
            if self.proxy is not None:
                sup.start("pod-proxy", self.proxy.run)
            sup.start("event-mirror", partial(self.event_mirror.run, mirrored_before))
            if self.capacity is not None:
                sup.start("remote-capacity", self.capacity.run)
            if self.quotas is not None:
                sup.start("remote-quotas", self.quotas.run)
            sup.start("kubelet-api", self.kubelet_api.run)
            sup.start("token-refresh", self.tokens.run)
            if self.config.metrics_port:
                sup.start(
                    "metrics",
                    partial(serve_metrics, self.config.metrics_port, sup.healthy, self.ready),
                )
            sup.start(
                "systemd-notify",
                partial(SystemdNotifier.from_environ().run, self.ready, sup.healthy),
            )

    # Late-bound, for parts made before the pod provider (one refers to the other).
    def _twin(self, key: PodKey) -> Obj | None:
        return self.remote_pods.get(key)

    async def _ensure_namespace(self, local_ns: str) -> None:
        await self.remote_pods.namespaces.ensure(local_ns)

    def _namespace_changed(self, local_ns: str) -> None:
        self.remote_pods.ns_queue.add(local_ns)

    def _identities_left(self, remote_ns: str) -> bool:
        return self.tokens.identities_by_ns.get(remote_ns, 0) > 0

    async def _node_warning(self, reason: str, message: str) -> None:
        await self.events.record(self.node.reference(), reason, message)

    def ready(self) -> bool:
        """Both clusters' caches synced and the Node reported Ready: systemd's READY=1."""
        return self.pods.synced.is_set() and self.node.reported_ready.is_set()


async def serve(config: Config) -> None:
    local_conf = await trio.to_thread.run_sync(
        kubeconfig.load, config.local.kubeconfig, config.local.context
    )
    remote_conf = await trio.to_thread.run_sync(
        kubeconfig.load, config.remote.kubeconfig, config.remote.context
    )
    # Everything imported so far (the kubernetes package alone is ~100,000
    # objects) lives as long as the process: keep it out of every collection.
    gc.freeze()
    log.info(
        "actual-kubelets %s: node %s, local %s, remote %s",
        __version__,
        config.node.name,
        local_conf.describe(),
        remote_conf.describe(),
    )
    agent = f"actual-kubelets/{__version__} (node {config.node.name})"
    local = KubeClient(
        local_conf, name="local", qps=config.local.qps, burst=config.local.burst, user_agent=agent
    )
    remote = KubeClient(
        remote_conf,
        name="remote",
        qps=config.remote.qps,
        burst=config.remote.burst,
        user_agent=agent,
    )
    try:
        if config.leader_elect:
            await _lead(config, local, remote)
        else:
            provider = Provider(config, local, remote)
            await provider.run(await read_last_heartbeat(local, config.node.name))
    finally:
        with trio.CancelScope(shield=True):
            await local.aclose()
            await remote.aclose()


async def _lead(config: Config, local: KubeClient, remote: KubeClient) -> None:
    """Stand by until this replica holds the node Lease, then act until it is lost."""
    node = config.node.name
    identity = (
        config.leader_elect_identity or f"{node}/{socket.gethostname()}-{secrets.token_hex(2)}"
    )
    provider = Provider(config, local, remote, manage_lease=False)
    elector = LeaderElector(
        local, node, identity, lambda: (provider.node.node or {}).get("metadata", {}).get("uid", "")
    )
    await elector.acquire()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(provider.run, elector.previous_heartbeat)
        await elector.hold()


# The cyclic GC's young generation, in container allocations. Decoding one
# 500-pod LIST page allocates ~30,000 dicts and lists that all die once the
# page is cached (as bytes, which the GC does not track); at the default 700
# the collector examined them several times over (measured: 10,000 pods
# decoded and cached in 1.0 s; 0.77 s at 5,000, 0.76 at 20,000, 0.67 with no
# GC). Cyclic garbage (a failed connection's exception and frames) waits
# longer for it: at 20,000, 10,000 malformed kubelet requests left RSS 44 MB
# up instead of ~11.
GC_YOUNG_THRESHOLD = 5_000


async def serve_until_terminated(
    config: Config, terminated_early: Callable[[], bool] = lambda: False
) -> None:
    """``serve`` until SIGTERM (the kubelet's and systemd's stop), then exit cleanly.

    Without a handler SIGTERM killed AK mid-write with status -15 (and the static
    binary's bootloader then printed "Child exited for unknown reason"). All of
    AK's state lives in the two API servers, so stopping is just cancelling.
    ``terminated_early``: whether a SIGTERM came before trio's receiver was
    installed (while this module loaded); asked once it is, so none is lost."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        if terminated_early():
            log.info("SIGTERM received while starting; stopping")
            return
        async with trio.open_nursery() as nursery:

            async def on_sigterm() -> None:
                async for _ in signals:
                    log.info("SIGTERM received; stopping")
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(on_sigterm)
            await serve(config)
            nursery.cancel_scope.cancel()


def main(config: Config, terminated_early: Callable[[], bool] = lambda: False) -> int:
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    # ConfigError (an unreadable kubeconfig) reaches the CLI, which prints one line.
    lost: list[BaseException] = []
    try:
        trio.run(serve_until_terminated, config, terminated_early)
    except* LeadershipLost as group:
        lost.extend(group.exceptions)
    if lost:
        # Like client-go: a replica that lost leadership exits and is restarted as a
        # standby, so nothing it still had in flight can write after the new leader.
        log.error("%s; exiting", lost[0])
        return 1
    return 0
