"""Listen on each pod's local address and carry its connections to the remote pod.

For every pod on the AK node whose local status shows an address of the pod
address range, AK listens on that address at every port the pod serves
(``proxied_ports``: declared container ports and the target ports of the
Services selecting it). Each accepted connection becomes a pair of streams
of the pod's port-forward session through the remote API server
(``forwarder``), as ``kubectl port-forward`` opens them, so it needs nothing
but the API-server reachability AK already has. Half-closes pass both ways.

Listeners follow the pod: opened once the local status shows the address,
changed when a Service's ports or selector change, closed when the pod
finishes or goes. Readiness is not the listeners' business: the local
endpoint controllers drop a NotReady pod from the endpoints, as they do for
any pod, and a client that dials it anyway still reaches it (as on a node).
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import trio

from ak.core.names import remote_namespace
from ak.core.pod_addresses import in_range, proxied_ports
from ak.core.status import TERMINAL_PHASES
from ak.core.types import Obj, PodKey
from ak.events import EventRecorder
from ak.kube.client import KubeClient
from ak.kubelet.remote import RemotePod
from ak.metrics import PROXIED
from ak.pods.controller import PodController
from ak.proxy.addresses import PodAddresses
from ak.proxy.forwarder import Forwarder
from ak.services.controller import ServiceController
from ak.sync.queue import WorkQueue
from ak.wire.spdy_session import SpdyStream, StreamReset
from ak.wire.websocket import Rejected

log = logging.getLogger(__name__)

REASON_LISTEN_FAILED = "PodAddressUnavailable"
CHUNK = 65536
CONNECT_TIMEOUT = 15


@dataclass
class _Listening:
    address: str
    ports: dict[int, trio.CancelScope] = field(default_factory=dict)


class PodProxy:
    def __init__(
        self,
        remote: KubeClient,
        node_name: str,
        addresses: PodAddresses,
        *,
        pods: PodController,
        services: ServiceController,
        events: EventRecorder,
        admits: Callable[[PodKey, int, str], bool] | None = None,
    ) -> None:
        self.node_name = node_name
        # The local ingress NetworkPolicies, which AK enforces here itself: no
        # network plugin sees these connections (ak/netpol/controller.py).
        self.admits = admits
        self.addresses = addresses
        self.pods = pods
        self.services = services
        self.events = events
        self.queue: WorkQueue[PodKey] = WorkQueue("pod-proxy")
        self.forwarder = Forwarder(remote)
        self._listening: dict[PodKey, _Listening] = {}
        # (uid, address, port) already told in an Event: once each.
        self._told: set[tuple[str, str, int]] = set()
        self._nursery: trio.Nursery | None = None

    def on_pod(self, old: Obj | None, new: Obj | None) -> None:
        # Most pod events are status changes that move no listener.
        obj = new or old
        if obj is not None and _listening_view(old) != _listening_view(new):
            self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def on_service(self, old: Obj | None, new: Obj | None) -> None:
        """A Service changed: every pod of its namespace may serve other ports."""
        obj = new or old
        if obj is None:
            return
        ns = obj["metadata"]["namespace"]
        for name in list(self.pods.local_by_ns.get(ns, ())):
            self.queue.add((ns, name))

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self.forwarder.run)
                await self.pods.synced.wait()
                for pod in self.pods.local_pods.values():
                    self.queue.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
                await self.queue.run_workers(1, self._sync)
        finally:
            self._nursery = None
            self._listening.clear()

    # -- what to listen on -----------------------------------------------------------
    def _wanted(self, key: PodKey) -> tuple[str, frozenset[int]] | None:
        pod = self.pods.local_pods.get(*key)
        if pod is None:
            return None
        status = pod.get("status") or {}
        address = status.get("podIP")
        if status.get("phase") in TERMINAL_PHASES or not in_range(address, self.addresses.net):
            return None
        assert address is not None
        names = list(self.services.by_ns.get(key[0], ()))
        found = (self.services.local_services.get(key[0], name) for name in names)
        services = [s for s in found if s is not None]
        return address, proxied_ports(pod, services)

    async def _sync(self, key: PodKey) -> float | None:
        assert self._nursery is not None
        wanted = self._wanted(key)
        current = self._listening.get(key)
        if current is not None and (wanted is None or wanted[0] != current.address):
            for scope in current.ports.values():
                scope.cancel()
            del self._listening[key]
            current = None
        if wanted is None:
            await self.forwarder.close(self._remote_pod(key))
            return None
        address, ports = wanted
        if current is None:
            current = self._listening[key] = _Listening(address)
        for port in set(current.ports) - ports:
            current.ports.pop(port).cancel()
        for port in sorted(ports - set(current.ports)):
            scope = trio.CancelScope()
            current.ports[port] = scope
            self._nursery.start_soon(self._listen, key, address, port, scope)
        return None

    # -- listening -------------------------------------------------------------------
    async def _listen(self, key: PodKey, address: str, port: int, scope: trio.CancelScope) -> None:
        with scope:
            try:
                listeners = await trio.open_tcp_listeners(port, host=address)
            except OSError as e:
                await self._listen_failed(key, address, port, e)
                return
            log.debug("pod %s/%s: listening on %s port %d", *key, address, port)
            await trio.serve_listeners(partial(self._forward, key, port), listeners)

    async def _listen_failed(self, key: PodKey, address: str, port: int, e: OSError) -> None:
        if e.errno == errno.EADDRNOTAVAIL:
            why = (
                f"{address} is not an address of AK's host: route the pod address range "
                f"{self.addresses.net} to it (on AK's host: ip route add local "
                f"{self.addresses.net} dev lo)"
            )
        else:
            why = str(e)
        message = (
            f"cannot listen on {address} port {port}, so the local cluster cannot reach it: {why}"
        )
        log.error("pod %s/%s: %s", *key, message)
        pod = self.pods.local_pods.get(*key)
        if pod is None:
            return
        told = (pod["metadata"].get("uid", ""), address, port)
        if told not in self._told:
            self._told.add(told)
            await self.events.record(pod, REASON_LISTEN_FAILED, message)

    # -- one connection --------------------------------------------------------------
    async def _forward(self, key: PodKey, port: int, stream: trio.SocketStream) -> None:
        rp = self._remote_pod(key)
        async with stream:
            if self.admits is not None:
                peer = _peer_ip(stream)
                if not self.admits(key, port, peer):
                    PROXIED.labels("denied").inc()
                    log.info("pod %s/%s port %d: %s denied by NetworkPolicy", *key, port, peer)
                    return
            try:
                with trio.fail_after(CONNECT_TIMEOUT):
                    error, data = await self.forwarder.streams(rp, port)
            except (Rejected, OSError, trio.TooSlowError, StreamReset) as e:
                PROXIED.labels("refused").inc()
                log.info("pod %s/%s port %d: remote port-forward refused: %s", *key, port, e)
                return
            PROXIED.labels("forwarded").inc()
            problems: list[bytes] = []
            try:
                await error.send_eof()  # nothing to say on it: only the kubelet writes there
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_collect, error, problems)
                    nursery.start_soon(_local_to_remote, stream, data)
                    if not await _remote_to_local(data, stream):
                        nursery.cancel_scope.cancel()  # broken: the other way ends too
            except StreamReset:
                pass  # the error stream, before anything flowed
            finally:
                with trio.CancelScope(shield=True):
                    for s in (error, data):
                        if not (s.local_closed and s.remote_closed):
                            await s.reset()
            if problems:
                PROXIED.labels("failed").inc()
                text = b"".join(problems).decode("utf-8", "replace")[:300]
                log.info("pod %s/%s port %d: %s", *key, port, text)

    def _remote_pod(self, key: PodKey) -> RemotePod:
        return RemotePod(remote_namespace(self.node_name, key[0]), key[1])


def _peer_ip(stream: trio.SocketStream) -> str:
    try:
        name = stream.socket.getpeername()
    except OSError:
        return ""
    return str(name[0]) if isinstance(name, tuple) else ""


def _listening_view(pod: Obj | None) -> tuple[object, ...] | None:
    """What ``_wanted`` reads of a pod: its address, phase, labels (Service
    selection) and containers (declared ports)."""
    if pod is None:
        return None
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    return (
        status.get("podIP"),
        status.get("phase"),
        pod["metadata"].get("labels"),
        spec.get("containers"),
        spec.get("initContainers"),
    )


async def _collect(error: SpdyStream, into: list[bytes]) -> None:
    with contextlib.suppress(StreamReset):
        while chunk := await error.receive_some():
            into.append(chunk)


async def _local_to_remote(stream: trio.SocketStream, data: SpdyStream) -> None:
    """The client's bytes, then its half-close, which SPDY carries."""
    try:
        while chunk := await stream.receive_some(CHUNK):
            await data.send_all(chunk)
        await data.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, StreamReset):
        with contextlib.suppress(StreamReset):
            await data.reset()


async def _remote_to_local(data: SpdyStream, stream: trio.SocketStream) -> bool:
    """The pod's bytes, then its half-close; False if either side broke. The
    client may still be sending after a clean end: the connection ends when
    both sides are done, as TCP's does."""
    try:
        while chunk := await data.receive_some():
            await stream.send_all(chunk)
        with contextlib.suppress(OSError):
            await stream.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, StreamReset):
        with contextlib.suppress(StreamReset):
            await data.reset()
        return False
    return True
