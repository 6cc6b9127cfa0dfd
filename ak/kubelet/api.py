"""The kubelet API server: TLS listener, authentication, routing and the endpoints.

Every request is authenticated and authorized first (401/403 before 404, as
the kubelet's filters do), then routed. The pod-scoped endpoints only serve
pods bound to this node (the local pod cache) and act on the remote copy in
its mapped namespace; the upgraded ones (exec, attach, port-forward) are in
``streaming``, the log stream below.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol

import h11
import trio
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from ak.config import Config
from ak.core.kubelet_status import failed, serving
from ak.core.names import remote_namespace
from ak.core.types import Obj
from ak.kube.client import KubeClient
from ak.kube.errors import KubeError
from ak.kubelet import podviews, routes
from ak.kubelet.auth import Authenticator, Authorizer
from ak.kubelet.certs import ServingCertificate, TLSSettings
from ak.kubelet.health import KubeletAPIHealth, describe
from ak.kubelet.nodecpu import NodeCPU
from ak.kubelet.remote import RemotePod
from ak.kubelet.routes import HTTPProblem
from ak.kubelet.streaming import StreamingEndpoints, _problem_from_remote
from ak.wire.http1_server import ConnectionDone, HTTPConnection, Request

log = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT = 10
STATS_TIMEOUT = 10
LOG_READ_TIMEOUT = 60.0


class PodCache(Protocol):
    """What the pod controller's informers offer (ak.kube.informer.Informer)."""

    def values(self) -> Iterator[Obj]: ...

    def get(self, namespace: str, name: str) -> Obj | None: ...


class KubeletAPI:
    def __init__(
        self,
        *,
        node_name: str,
        port: int,
        tls: TLSSettings,
        local: KubeClient,
        remote: KubeClient,
        local_pods: PodCache,
        remote_pods: PodCache,
        bind_host: str | None = None,
        health: KubeletAPIHealth | None = None,
    ) -> None:
        self.node_name = node_name
        self.port = port
        self.bind_host = bind_host
        self.local = local
        self.remote = remote
        self.local_pods = local_pods
        self.remote_pods = remote_pods
        self.health = health or KubeletAPIHealth()
        self.cert = ServingCertificate(tls, local, self.health)
        self.authn = Authenticator(local)
        self.authz = Authorizer(local, node_name)
        self.started = datetime.now(UTC)
        # The node's CPU counter, carried from scrape to scrape (ak/kubelet/nodecpu.py).
        self.node_cpu: NodeCPU | None = None
        # streaming requests in progress, for tests and debugging
        self.active: Counter[str] = Counter()
        self.streaming = StreamingEndpoints(remote, self.active)

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.cert.run)
                await self.cert.ready.wait()
                listeners = await trio.open_tcp_listeners(self.port, host=self.bind_host)
                log.info("kubelet API listening on port %d (TLS)", self.port)
                await self.health.set(serving(self.port))
                await trio.serve_listeners(self._serve_connection, listeners)
        except Exception as e:
            # The node advertises this port: say on it why it refuses connections
            # (the supervisor logs the traceback and restarts this task).
            await self.health.set(failed(self.port, describe(e)))
            raise

    # -- connections -------------------------------------------------------------------
    async def _serve_connection(self, tcp: trio.SocketStream) -> None:
        tls = trio.SSLStream(tcp, self.cert.context(), server_side=True)
        try:
            with trio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                await tls.do_handshake()
        except BaseException as e:
            # Cancelled (shutdown) too: the socket is closed now, not by the GC.
            with trio.CancelScope(shield=True):
                await tcp.aclose()
            if isinstance(e, trio.BrokenResourceError | trio.TooSlowError | ssl.SSLError):
                log.debug("kubelet API: TLS handshake failed: %s", e.__cause__ or e)
                return
            raise
        peer: bytes | None = tls.getpeercert(binary_form=True)
        conn = HTTPConnection(tls)
        try:
            while True:
                request = await conn.next_request()
                if request is None:
                    break
                await self._dispatch(conn, request, peer)
                if not conn.reusable:
                    break
        except ConnectionDone as e:
            log.debug("kubelet API: %s", e)
        except Exception:
            log.exception("kubelet API: connection failed")
        finally:
            with trio.CancelScope(shield=True):
                await tls.aclose()

    async def _dispatch(self, conn: HTTPConnection, req: Request, peer: bytes | None) -> None:
        user = "-"
        try:
            identity = await self.authn.authenticate(peer, req.header("authorization"))
            user = identity.name
            await self.authz.authorize(identity, req.method, req.target)
            route = routes.parse(req.method, req.target)
            await self._handle(conn, req, route)
        except HTTPProblem as p:
            if not conn.taken_over and conn.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                headers = req.meta.get("problem_headers")
                await conn.respond_error(p.status, p.message, p.reason, headers=headers)
            else:
                raise ConnectionDone(f"{req.method} {req.target}: {p.message}") from None
        finally:
            log.debug(
                "kubelet API: %s %s %s -> %s", user, req.method, req.target[:200], conn.status
            )

    async def _handle(self, conn: HTTPConnection, req: Request, route: routes.Route) -> None:
        if isinstance(route, routes.Simple):
            await self._simple(conn, route.name)
        elif isinstance(route, routes.ContainerLogs):
            await self._logs(conn, route)
        elif isinstance(route, routes.Exec):
            rp = self._remote_pod(route.pod, route.container)
            await self.streaming.serve_exec(conn, req, route, rp)
        else:
            await self.streaming.serve_port_forward(conn, req, route, self._remote_pod(route.pod))

    # -- simple endpoints ----------------------------------------------------------------
    async def _simple(self, conn: HTTPConnection, name: str) -> None:
        if name == "healthz":
            await conn.respond(200, b"ok", "text/plain; charset=utf-8")
        elif name == "pods":
            await self._json(conn, podviews.pod_list(self.local_pods.values()))
        elif name == "runningpods":
            await self._json(conn, podviews.running_pods(self.node_name, self.remote_pods.values()))
        else:
            stats, failed = await self.summary()
            if name == "stats":
                await self._json(conn, stats)
            else:
                body = podviews.resource_metrics(stats, failed)
                await conn.respond(200, body, CONTENT_TYPE_PLAIN_0_0_4)

    async def _json(self, conn: HTTPConnection, body: Obj) -> None:
        await conn.respond(200, json.dumps(body).encode())

    async def summary(self) -> tuple[Obj, bool]:
        """The stats summary and whether any remote node's stats were missing."""
        remote_pods = list(self.remote_pods.values())
        nodes = sorted(
            {
                p["spec"]["nodeName"]
                for p in remote_pods
                if (p.get("spec") or {}).get("nodeName")
                and podviews.local_ref(self.node_name, p) is not None
            }
        )
        found: dict[str, Obj | None] = {}

        async def fetch(node: str) -> None:
            found[node] = None
            with trio.move_on_after(STATS_TIMEOUT):
                try:
                    found[node] = await self.remote.get(f"/api/v1/nodes/{node}/proxy/stats/summary")
                except KubeError as e:
                    log.debug("stats of remote node %s unavailable: %s", node, e)

        async with trio.open_nursery() as nursery:
            for node in nodes:
                nursery.start_soon(fetch, node)
        # No await between reading the node's CPU counter and storing it: two
        # scrapes at once each advance it whole (ak/kubelet/nodecpu.py).
        now = datetime.now(UTC)
        stats, self.node_cpu = podviews.summary(
            self.node_name, self.started, now, remote_pods, found, node_cpu=self.node_cpu
        )
        return stats, any(v is None for v in found.values())

    # -- pods ----------------------------------------------------------------------------
    def _remote_pod(self, ref: routes.PodRef, container: str | None = None) -> RemotePod:
        pod = self.local_pods.get(ref.namespace, ref.pod)
        if pod is None:
            raise HTTPProblem(404, f"pod {ref.namespace}/{ref.pod} not found on this node")
        if ref.uid and pod["metadata"].get("uid") != ref.uid:
            raise HTTPProblem(404, f"pod {ref.namespace}/{ref.pod} with UID {ref.uid} not found")
        if container is not None:
            spec = pod.get("spec") or {}
            names = {
                c.get("name")
                for key in ("containers", "initContainers", "ephemeralContainers")
                for c in spec.get(key) or []
            }
            if container not in names:
                raise HTTPProblem(
                    404, f"container {container} not found in pod {ref.namespace}/{ref.pod}"
                )
        return RemotePod(remote_namespace(self.node_name, ref.namespace), ref.pod)

    # -- logs -----------------------------------------------------------------------------
    async def _logs(self, conn: HTTPConnection, route: routes.ContainerLogs) -> None:
        rp = self._remote_pod(route.pod, route.container)
        pod = self.local_pods.get(route.pod.namespace, route.pod.pod)
        why = podviews.never_ran(pod, route.container) if pod is not None else None
        if why is not None and not route.options.previous:
            # The remote has no such container (it refused it): say why, in plain
            # text as the kubelet does (the API server passes it on as the error's
            # message), so `kubectl logs` and `kubectl debug` end on the reason.
            await conn.respond(400, why.encode(), "text/plain; charset=utf-8")
            return
        params = route.options.remote_params(route.container)
        what = f"logs {route.pod.namespace}/{route.pod.pod}/{route.container}"
        # A follow lasts as long as the client stays; a plain read that stalls
        # (the remote kubelet not answering) must not hold the client forever.
        read_timeout = None if route.options.follow else LOG_READ_TIMEOUT
        self.active[what] += 1
        try:
            async with (
                self.remote.stream(rp.path("log"), params, read_timeout=read_timeout) as resp,
                conn.streaming(200, "text/plain") as out,
            ):
                async for chunk in resp.aiter_raw():
                    await out.send(chunk)
            log.debug("%s: remote stream ended", what)
        except KubeError as e:
            if conn.h11.our_state is h11.SEND_BODY:
                log.info("%s: remote stream failed: %s", what, e)
                raise ConnectionDone(str(e)) from e
            raise _problem_from_remote(e) from e
        except ConnectionDone:
            log.debug("%s: client went away; remote stream closed", what)
            raise
        finally:
            self.active[what] -= 1


def from_config(
    config: Config,
    local: KubeClient,
    remote: KubeClient,
    internal_ip: str,
    *,
    local_pods: PodCache,
    remote_pods: PodCache,
    health: KubeletAPIHealth | None = None,
) -> KubeletAPI:
    """The kubelet API as ``ak run`` configures it (see ak.config.KubeletSettings)."""
    k = config.kubelet
    client_ca = k.client_ca_file or local.config.ca_file
    if client_ca is None:
        log.warning(
            "kubelet API: no client CA (--client-ca-file, or a CA in the local kubeconfig): "
            "client certificates are not accepted, only bearer tokens"
        )
    tls = TLSSettings(
        node_name=config.node.name,
        addresses=(internal_ip, config.node.name),
        cert_file=k.tls_cert_file,
        key_file=k.tls_private_key_file,
        client_ca_file=client_ca,
        cert_dir=k.cert_dir,
    )
    return KubeletAPI(
        node_name=config.node.name,
        port=config.node.kubelet_port,
        tls=tls,
        local=local,
        remote=remote,
        local_pods=local_pods,
        remote_pods=remote_pods,
        health=health,
    )
