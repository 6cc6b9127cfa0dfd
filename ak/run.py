"""``ak run``: connect to both clusters and supervise AK's long-running tasks."""

from __future__ import annotations

import logging
import socket
from functools import partial
from urllib.parse import urlsplit

import trio

from ak import __version__
from ak.config import Config
from ak.core.names import node_label_value
from ak.deps.controller import DependencyController
from ak.events import EventRecorder
from ak.kube import config as kubeconfig
from ak.kube.client import KubeClient
from ak.metrics_server import serve_metrics
from ak.node.controller import NodeController, NodeSpec, RemoteHealth
from ak.pods.controller import PodController, PodSettings
from ak.sync.supervisor import Supervisor
from ak.systemd import SystemdNotifier

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


class Provider:
    """Everything ``ak run`` runs, wired together; tests drive it in-process too."""

    def __init__(self, config: Config, local: KubeClient, remote: KubeClient) -> None:
        self.config = config
        self.local = local
        self.remote = remote
        node = config.node
        label = node_label_value(node.name)
        self.health = RemoteHealth()
        self.events = EventRecorder(local, node.name)
        self.deps = DependencyController(local, remote, node.name, label)
        self.pods = PodController(
            local,
            remote,
            PodSettings(
                node_name=node.name,
                node_label=label,
                extra_env=[{"name": k, "value": v} for k, v in config.pods.env],
                workers=config.pods.workers,
            ),
            self.deps,
            self.events,
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
            remote_ready=self.pods.synced.is_set,
        )

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            sup = Supervisor(nursery)
            sup.start("node", self.node.run)
            sup.start("dependency-sync", self.deps.run)
            sup.start("pod-sync", self.pods.run)
            if self.config.metrics_port:
                sup.start(
                    "metrics",
                    partial(serve_metrics, self.config.metrics_port, sup.healthy, self.ready),
                )
            sup.start(
                "systemd-notify",
                partial(SystemdNotifier.from_environ().run, self.ready, sup.healthy),
            )

    def ready(self) -> bool:
        """Registered as a node with both clusters' caches synced: systemd's READY=1."""
        return self.node.registered.is_set() and self.pods.synced.is_set()


async def serve(config: Config) -> None:
    local_conf = await trio.to_thread.run_sync(
        kubeconfig.load, config.local.kubeconfig, config.local.context
    )
    remote_conf = await trio.to_thread.run_sync(
        kubeconfig.load, config.remote.kubeconfig, config.remote.context
    )
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
        await Provider(config, local, remote).run()
    finally:
        with trio.CancelScope(shield=True):
            await local.aclose()
            await remote.aclose()


def main(config: Config) -> int:
    # ConfigError (an unreadable kubeconfig) reaches the CLI, which prints one line.
    trio.run(serve, config)
    return 0
