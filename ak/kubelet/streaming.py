"""exec, attach and port-forward: the kubelet API endpoints that switch protocols.

The client's connection is upgraded to SPDY/3.1 or WebSocket, the remote API
server is reached over a WebSocket, and ``remotecommand`` or ``portforward``
bridges the two. ``KubeletAPI`` has authorized the request and found the
pod's remote copy before it hands the request over.
"""

from __future__ import annotations

import json
from collections import Counter

import trio

from ak.kube.client import KubeClient
from ak.kube.errors import ApiError
from ak.kubelet import channels, routes
from ak.kubelet.portforward import serve_spdy, serve_websocket
from ak.kubelet.remote import (
    EXEC_PROTOCOLS,
    PORTFORWARD_PROTOCOLS,
    RemoteChannels,
    RemotePod,
    open_websocket,
)
from ak.kubelet.remotecommand import SpdyLocalStreams, WebSocketLocalStreams, bridge
from ak.kubelet.routes import HTTPProblem
from ak.wire.http1_server import HTTPConnection, Request
from ak.wire.spdy_session import SpdySession
from ak.wire.websocket import Rejected, WebSocket, accept_key, server_connection


def _problem_from_remote(e: Exception) -> HTTPProblem:
    if isinstance(e, Rejected):
        message = e.body.decode("utf-8", "replace")
        reason = ""
        try:
            body = json.loads(e.body)
            message, reason = str(body.get("message", message)), str(body.get("reason", ""))
        except (ValueError, AttributeError):
            pass
        return HTTPProblem(e.status, message or f"remote API server answered {e.status}", reason)
    if isinstance(e, ApiError):
        return HTTPProblem(e.status, e.message or str(e), e.reason)
    return HTTPProblem(500, f"remote cluster unreachable: {e}")


class StreamingEndpoints:
    """The upgraded endpoints of ``KubeletAPI``, acting on the remote copy of a pod."""

    def __init__(self, remote: KubeClient, active: Counter[str]) -> None:
        self.remote = remote
        self.active = active  # KubeletAPI's: every streaming request in progress

    # -- exec / attach ---------------------------------------------------------------------
    async def _open_remote(
        self, rp: RemotePod, sub: str, query: list[tuple[str, str]], protocols: list[str]
    ) -> RemoteChannels:
        try:
            ws = await open_websocket(self.remote, rp.path(sub), query, protocols)
        except (Rejected, OSError, trio.TooSlowError) as e:
            raise _problem_from_remote(e) from e
        return RemoteChannels(ws)

    async def serve_exec(
        self, conn: HTTPConnection, req: Request, route: routes.Exec, rp: RemotePod
    ) -> None:
        kind = "attach" if route.attach else "exec"
        upgrade = req.upgrade
        if upgrade not in ("spdy/3.1", "websocket"):
            raise HTTPProblem(400, f"{kind}: an upgrade to SPDY/3.1 or websocket is required")
        query = [("container", route.container), *route.options.remote_params()]
        query += [("command", c) for c in route.command]
        what = f"{kind} {route.pod.namespace}/{route.pod.pod}/{route.container}"
        if upgrade == "spdy/3.1":
            protocol = self._spdy_protocol(req, channels.SPDY_REMOTECOMMAND_PROTOCOLS)
            remote = await self._open_remote(rp, kind, query, EXEC_PROTOCOLS)
            try:
                transport, trailing = await conn.switch_protocols(
                    [
                        ("connection", "Upgrade"),
                        ("upgrade", "SPDY/3.1"),
                        ("x-stream-protocol-version", protocol),
                    ]
                )
            except BaseException:
                with trio.CancelScope(shield=True):
                    await remote.aclose()
                raise
            session = SpdySession(transport, trailing)
            self.active[what] += 1
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(session.run)
                    local = await SpdyLocalStreams.collect(session, protocol, route.options)
                    if local is not None:
                        await bridge(local, remote, what)
                    nursery.cancel_scope.cancel()
            finally:
                self.active[what] -= 1
                with trio.CancelScope(shield=True):
                    await remote.aclose()
                    await session.aclose()
            return
        ws_protocol = self._websocket_protocol(req)
        remote = await self._open_remote(rp, kind, query, EXEC_PROTOCOLS)
        try:
            ws = await self._accept_websocket(conn, req, ws_protocol)
        except BaseException:
            with trio.CancelScope(shield=True):
                await remote.aclose()
            raise
        local_ws = WebSocketLocalStreams(ws, route.options)
        self.active[what] += 1
        try:
            async with trio.open_nursery() as nursery:
                await local_ws.start(nursery)
                await bridge(local_ws, remote, what)
                nursery.cancel_scope.cancel()
        finally:
            self.active[what] -= 1
            with trio.CancelScope(shield=True):
                await remote.aclose()
                await ws.close()

    def _spdy_protocol(self, req: Request, supported: tuple[str, ...]) -> str:
        offered = req.header_values("x-stream-protocol-version")
        if not offered:
            raise HTTPProblem(400, "unable to upgrade: X-Stream-Protocol-Version is required")
        for name in offered:
            if name in supported:
                return name
        req.meta["problem_headers"] = [
            ("x-accepted-stream-protocol-versions", p) for p in supported
        ]
        raise HTTPProblem(
            403,
            f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
            f"server accepts {list(supported)}",
        )

    def _websocket_protocol(self, req: Request) -> str:
        if req.method != "GET":
            raise HTTPProblem(400, "websocket upgrades must use GET")
        if req.header("sec-websocket-version") != "13" or not req.header("sec-websocket-key"):
            raise HTTPProblem(400, "bad websocket handshake (version 13 and a key are required)")
        chosen = channels.negotiate(
            req.header_values("sec-websocket-protocol"), channels.SERVER_WEBSOCKET_PROTOCOLS
        )
        if chosen is None:
            raise HTTPProblem(400, "unable to negotiate a websocket channel protocol")
        return chosen

    async def _accept_websocket(
        self, conn: HTTPConnection, req: Request, protocol: str
    ) -> WebSocket:
        headers = [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", accept_key(req.header("sec-websocket-key") or "")),
        ]
        if protocol:
            headers.append(("sec-websocket-protocol", protocol))
        transport, trailing = await conn.switch_protocols(headers)
        return WebSocket(transport, server_connection(trailing), protocol)

    # -- port-forward -----------------------------------------------------------------------
    async def serve_port_forward(
        self, conn: HTTPConnection, req: Request, route: routes.PortForward, rp: RemotePod
    ) -> None:
        what = f"port-forward {route.pod.namespace}/{route.pod.pod}"

        async def open_remote(port: int) -> RemoteChannels:
            ws = await open_websocket(
                self.remote, rp.path("portforward"), [("ports", str(port))], PORTFORWARD_PROTOCOLS
            )
            return RemoteChannels(ws)

        upgrade = req.upgrade
        if upgrade == "spdy/3.1":
            protocol = self._spdy_protocol(req, channels.SPDY_PORTFORWARD_PROTOCOLS)
            transport, trailing = await conn.switch_protocols(
                [
                    ("connection", "Upgrade"),
                    ("upgrade", "SPDY/3.1"),
                    ("x-stream-protocol-version", protocol),
                ]
            )
            session = SpdySession(transport, trailing)
            self.active[what] += 1
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(session.run)
                    await serve_spdy(session, open_remote, what)
                    nursery.cancel_scope.cancel()
            finally:
                self.active[what] -= 1
                with trio.CancelScope(shield=True):
                    await session.aclose()
            return
        if upgrade != "websocket":
            raise HTTPProblem(400, "port-forward: an upgrade to SPDY/3.1 or websocket is required")
        if not route.ports:
            raise HTTPProblem(400, "port-forward over websocket needs ?port=")
        protocol = self._websocket_protocol(req)
        ws = await self._accept_websocket(conn, req, protocol)
        self.active[what] += 1
        try:
            await serve_websocket(ws, route.ports, open_remote, what)
        finally:
            self.active[what] -= 1
