"""port-forward: each forwarded TCP connection becomes one remote WebSocket.

SPDY (``portforward.k8s.io``): the client opens a pair of streams per TCP
connection, ``error`` then ``data``, sharing a ``requestID`` and naming the
``port``; many pairs share one session. WebSocket (legacy channel protocols):
the ports come in the query and port i uses channels 2i (data) and 2i+1
(error), each starting with the port as uint16 little-endian.

Towards the remote cluster each connection is its own
``/portforward?ports=P`` WebSocket with ``v4.channel.k8s.io``: channel 0
data, channel 1 errors, both starting with the 2-byte port, which is stripped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from ak.kubelet import channels
from ak.kubelet.remote import RemoteChannels
from ak.wire.spdy_session import SpdySession, SpdyStream, StreamReset
from ak.wire.websocket import Rejected, WebSocket, WebSocketClosed

log = logging.getLogger(__name__)

PAIR_TIMEOUT = 30
OpenRemote = Callable[[int], Awaitable[RemoteChannels]]


class _PortPrefix:
    """Strips the 2-byte port a port-forward channel starts with."""

    def __init__(self) -> None:
        self.left = 2

    def strip(self, data: bytes) -> bytes:
        if self.left:
            cut = min(self.left, len(data))
            self.left -= cut
            data = data[cut:]
        return data


def remote_error_text(e: Exception) -> str:
    if isinstance(e, Rejected):
        return (
            f"error forwarding port: remote API server answered {e.status}: "
            + e.body.decode("utf-8", "replace")[:500]
        )
    return f"error forwarding port: {e}"


async def pump_remote_to(
    remote: RemoteChannels,
    on_data: Callable[[bytes], Awaitable[None]],
    on_error: Callable[[bytes], Awaitable[None]],
) -> None:
    """Remote channel 0 -> on_data, channel 1 -> on_error, until the remote closes."""
    prefixes = {0: _PortPrefix(), 1: _PortPrefix()}
    try:
        while True:
            item = await remote.receive()
            if isinstance(item, channels.ChannelData) and item.channel in prefixes:
                data = prefixes[item.channel].strip(item.data)
                if data:
                    await (on_data if item.channel == 0 else on_error)(data)
    except WebSocketClosed:
        return


# --- SPDY -------------------------------------------------------------------------


async def serve_spdy(session: SpdySession, open_remote: OpenRemote, what: str) -> None:
    """Pair incoming streams and forward each pair until the session ends."""
    pending: dict[str, dict[str, SpdyStream]] = {}
    try:
        async with trio.open_nursery() as nursery:
            async for stream in session.incoming:
                kind = stream.stream_type
                request_id = stream.header("requestid")
                if request_id is None:  # very old clients: derive it from the stream id
                    request_id = str(stream.stream_id if kind == "error" else stream.stream_id - 2)
                if kind not in ("error", "data"):
                    log.debug("%s: stream with type %r; resetting it", what, kind)
                    await stream.reset()
                    continue
                pair = pending.setdefault(request_id, {})
                if kind in pair:
                    await stream.reset()
                    continue
                pair[kind] = stream
                if len(pair) == 2:
                    del pending[request_id]
                    nursery.start_soon(
                        _forward_pair, pair["error"], pair["data"], open_remote, what
                    )
                else:
                    nursery.start_soon(_expire_pair, pending, request_id)
            nursery.cancel_scope.cancel()  # the session ended: stop every forward
    finally:
        await session.aclose()


async def _expire_pair(pending: dict[str, dict[str, SpdyStream]], request_id: str) -> None:
    await trio.sleep(PAIR_TIMEOUT)
    pair = pending.pop(request_id, None)
    for stream in (pair or {}).values():
        log.info("port-forward: request %s got no matching stream; resetting", request_id)
        await stream.reset()


async def _forward_pair(
    error: SpdyStream, data: SpdyStream, open_remote: OpenRemote, what: str
) -> None:
    port_text = data.header("port") or error.header("port") or ""
    try:
        port = channels.parse_ports(port_text)[0]
    except ValueError:
        await _fail_pair(error, data, f"invalid port {port_text!r}")
        return
    try:
        remote = await open_remote(port)
    except (OSError, Rejected, trio.TooSlowError) as e:
        log.info("%s: port %d: %s", what, port, e)
        await _fail_pair(error, data, remote_error_text(e))
        return
    log.debug("%s: forwarding port %d (stream %d)", what, port, data.stream_id)
    try:
        async with trio.open_nursery() as nursery:

            async def local_to_remote() -> None:
                try:
                    while chunk := await data.receive_some():
                        await remote.send(0, chunk)
                except StreamReset:
                    nursery.cancel_scope.cancel()  # the client dropped the connection

            async def on_error(message: bytes) -> None:
                await error.send_all(message)

            nursery.start_soon(local_to_remote)
            await pump_remote_to(remote, data.send_all, on_error)
            nursery.cancel_scope.cancel()
        await data.send_eof()
        await error.send_eof()
    except (StreamReset, WebSocketClosed):
        pass
    finally:
        with trio.CancelScope(shield=True):
            await remote.aclose()
            if not (data.local_closed and data.remote_closed):
                await data.reset()
            if not error.local_closed:
                await error.reset()


async def _fail_pair(error: SpdyStream, data: SpdyStream, message: str) -> None:
    try:
        await error.send_all(message.encode())
        await error.send_eof()
    except StreamReset:
        pass
    await data.reset()


# --- WebSocket ----------------------------------------------------------------------


async def _pump_then_end(
    remote: RemoteChannels,
    on_data: Callable[[bytes], Awaitable[None]],
    on_error: Callable[[bytes], Awaitable[None]],
    nursery: trio.Nursery,
) -> None:
    # v4 channels cannot half-close: when one forwarded connection ends, the
    # WebSocket ends, as with the kubelet.
    await pump_remote_to(remote, on_data, on_error)
    nursery.cancel_scope.cancel()


async def serve_websocket(
    ws: WebSocket, ports: tuple[int, ...], open_remote: OpenRemote, what: str
) -> None:
    protocol = channels.ChannelProtocol(ws.subprotocol)
    remotes: list[RemoteChannels] = []
    try:
        for port in ports:
            try:
                remotes.append(await open_remote(port))
            except (OSError, Rejected, trio.TooSlowError) as e:
                log.info("%s: port %d: %s", what, port, e)
                await ws.send(channels.encode(protocol, 1, remote_error_text(e).encode()))
                return
        for i, port in enumerate(ports):
            for channel in (2 * i, 2 * i + 1):
                await ws.send(channels.encode(protocol, channel, channels.port_prefix(port)))
        async with trio.open_nursery() as nursery:
            for i, remote in enumerate(remotes):

                async def to_local(data: bytes, ch: int = 2 * i) -> None:
                    await ws.send(channels.encode(protocol, ch, data))

                async def err_to_local(data: bytes, ch: int = 2 * i + 1) -> None:
                    await ws.send(channels.encode(protocol, ch, data))

                nursery.start_soon(_pump_then_end, remote, to_local, err_to_local, nursery)
            try:
                while True:
                    item = channels.decode(protocol, await ws.receive())
                    if isinstance(item, channels.ChannelData) and item.channel % 2 == 0:
                        index = item.channel // 2
                        if index < len(remotes) and item.data:
                            await remotes[index].send(0, item.data)
            except (WebSocketClosed, channels.FramingError):
                pass
            nursery.cancel_scope.cancel()
    except WebSocketClosed:
        pass
    finally:
        with trio.CancelScope(shield=True):
            for remote in remotes:
                await remote.aclose()
            await ws.close()
