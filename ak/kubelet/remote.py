"""Calls to the remote API server on behalf of a kubelet API request.

Logs are an httpx stream; exec, attach and port-forward are WebSockets
(``v5.channel.k8s.io`` preferred for exec/attach because it can half-close
stdin, ``v4.channel.k8s.io`` otherwise), authenticated like every other
remote call.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ak.kube.client import KubeClient
from ak.kubelet import channels
from ak.kubelet.websocket import WebSocket, connect

EXEC_PROTOCOLS = [channels.V5, channels.V4]
PORTFORWARD_PROTOCOLS = [channels.V4]


@dataclass(frozen=True)
class RemotePod:
    namespace: str
    name: str

    def path(self, subresource: str) -> str:
        return f"/api/v1/namespaces/{quote(self.namespace)}/pods/{quote(self.name)}/{subresource}"


async def open_websocket(
    client: KubeClient, path: str, query: list[tuple[str, str]], protocols: list[str]
) -> WebSocket:
    """A WebSocket to the remote API server; raises websocket.Rejected on an HTTP error."""
    url = client.config.server + path + ("?" + urlencode(query) if query else "")
    headers = [(b"user-agent", b"actual-kubelets")]
    token = client.config.token()
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return await connect(
        url,
        ssl_context=client.config.ssl_context,
        subprotocols=protocols,
        headers=headers,
        server_hostname=client.config.tls_server_name,
    )


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
