"""Calls to the remote API server on behalf of a kubelet API request.

Logs are an httpx stream; exec, attach and port-forward are WebSockets
(``v5.channel.k8s.io`` preferred for exec/attach because it can half-close
stdin, ``v4.channel.k8s.io`` otherwise), authenticated like every other
remote call. The pod proxy's port-forwards are SPDY sessions instead
(``open_spdy``): one session carries many connections, each a pair of streams,
where a WebSocket carries one.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

import trio

from ak.kube.client import KubeClient
from ak.kube.http11 import TransportError, parse_head
from ak.kubelet import channels
from ak.kubelet.spdy_session import SpdySession
from ak.kubelet.websocket import Rejected, WebSocket, connect

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


MAX_RESPONSE_HEAD = 65536


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
    OSError or trio.TooSlowError when the server cannot be reached."""
    parts = urlsplit(client.config.server)
    host = parts.hostname or ""
    port = parts.port or 443
    target = path + ("?" + urlencode(query) if query else "")
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {netloc}",
        "User-Agent: actual-kubelets",
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
        f"X-Stream-Protocol-Version: {protocol}",
        "Content-Length: 0",
    ]
    token = client.config.token()
    if token:
        lines.append(f"Authorization: Bearer {token}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with trio.fail_after(connect_timeout):
        tcp = await trio.open_tcp_stream(host, port)
        stream = trio.SSLStream(
            tcp,
            client.config.ssl_context,
            server_hostname=client.config.tls_server_name or host,
            https_compatible=True,
        )
        try:
            await stream.send_all(request)
            head = bytearray()
            while b"\r\n\r\n" not in head:
                data = await stream.receive_some(65536)
                if not data or len(head) > MAX_RESPONSE_HEAD:
                    raise Rejected(502, b"connection closed during the upgrade")
                head += data
            raw, _, rest = bytes(head).partition(b"\r\n\r\n")
            try:
                status, headers = parse_head(raw)
            except TransportError:
                status, headers = 502, {}
            if status != 101:
                length = headers.get("content-length", "")
                size = int(length) if length.isdigit() else 0
                raise Rejected(status, await _body(stream, size, rest))
            return SpdySession(stream, rest, client=True)
        except BaseException:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            raise


async def _body(stream: trio.SSLStream[trio.SocketStream], length: int, rest: bytes) -> bytes:
    """The refusal's body, as much as Content-Length says (errors are small)."""
    length = min(length, MAX_RESPONSE_HEAD)
    body = bytearray(rest)
    with trio.move_on_after(2):
        while len(body) < length:
            data = await stream.receive_some(65536)
            if not data:
                break
            body += data
    return bytes(body[:length] if length else body)


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
