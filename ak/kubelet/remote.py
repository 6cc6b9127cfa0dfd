"""Calls to the remote API server on behalf of a kubelet API request.

Logs are a stream of ``KubeClient``; exec, attach and port-forward are
WebSockets (``v5.channel.k8s.io`` preferred for exec/attach because it can
half-close stdin, ``v4.channel.k8s.io`` otherwise), authenticated like every
other remote call. The pod proxy's port-forwards are SPDY sessions instead
(``open_spdy``): one session carries many connections, each a pair of streams,
where a WebSocket carries one. Both are opened by the client's HTTP engine
(``ak.wire.http1``: connect, TLS, request head, response head), which hands
over the raw stream and the bytes already read past the 101.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ak.kube.client import KubeClient
from ak.kubelet import channels
from ak.wire.http1 import Refused
from ak.wire.spdy_session import SpdySession
from ak.wire.websocket import Rejected, WebSocket, connect

EXEC_PROTOCOLS = [channels.V5, channels.V4]
PORTFORWARD_PROTOCOLS = [channels.V4]


@dataclass(frozen=True)
class RemotePod:
    namespace: str
    name: str

    def path(self, subresource: str) -> str:
        return f"/api/v1/namespaces/{quote(self.namespace)}/pods/{quote(self.name)}/{subresource}"


def _headers(client: KubeClient) -> dict[str, str]:
    headers = {"User-Agent": "actual-kubelets"}
    token = client.config.token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def open_websocket(
    client: KubeClient, path: str, query: list[tuple[str, str]], protocols: list[str]
) -> WebSocket:
    """A WebSocket to the remote API server; raises websocket.Rejected on an HTTP
    error, OSError (the engine's TransportError) when the server cannot be reached."""
    target = path + ("?" + urlencode(query) if query else "")
    return await connect(client.engine, target, subprotocols=protocols, headers=_headers(client))


async def open_spdy(
    client: KubeClient,
    path: str,
    query: list[tuple[str, str]],
    protocol: str,
    connect_timeout: float = 15,
) -> SpdySession:
    """A SPDY/3.1 client session upgraded from a POST to the remote API server
    (``X-Stream-Protocol-Version: protocol``), not yet running: the caller runs
    ``session.run`` in its nursery. Raises websocket.Rejected on an HTTP error,
    OSError (the engine's TransportError) when the server cannot be reached."""
    target = path + ("?" + urlencode(query) if query else "")
    headers = {
        **_headers(client),
        "Connection": "Upgrade",
        "Upgrade": "SPDY/3.1",
        "X-Stream-Protocol-Version": protocol,
    }
    try:
        up = await client.engine.upgrade("POST", target, headers, timeout=connect_timeout)
    except Refused as e:
        raise Rejected(e.status, e.body) from None
    return SpdySession(up.stream, up.leftover, client=True)


class RemoteChannels:
    """exec/attach/port-forward channels on a remote WebSocket."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.protocol = channels.ChannelProtocol(ws.subprotocol)

    async def send(self, channel: int, data: bytes) -> None:
        message = channels.encode(self.protocol, channel, data)
        await self.ws.send(message)

    async def close_channel(self, channel: int) -> bool:
        """Half-close (v5 only); False if the protocol cannot."""
        if not self.protocol.can_close:
            return False
        await self.ws.send(channels.encode_close(self.protocol, channel))
        return True

    async def receive(self) -> channels.ChannelData | channels.ChannelClose | None:
        """Raises WebSocketClosed at the end."""
        return channels.decode(self.protocol, await self.ws.receive())

    async def aclose(self) -> None:
        await self.ws.close()
