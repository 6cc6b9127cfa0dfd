"""exec and attach: the local client's streams joined to a remote WebSocket.

The local side is SPDY (what kube-apiserver speaks to kubelets: separate
streams named by their ``streamType`` header) or a legacy WebSocket channel
protocol passed straight through by the API server. The remote side is
always a WebSocket to the remote API server. Data flows:

    local stdin  -> remote channel 0 (EOF -> v5 close of channel 0)
    local resize -> remote channel 4
    remote 1/2   -> local stdout/stderr
    remote 3     -> the status, reported locally when the remote side ends

When the remote command ends, stdout and stderr are half-closed, the status is
written (v4: JSON Status as the remote reported it, with the real exit code;
older protocols: its message, nothing on success) and the connection closes.
If the local client vanishes, the remote WebSocket is closed at once.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

import trio

from ak.kubelet import channels
from ak.kubelet.remote import RemoteChannels
from ak.kubelet.routes import StreamOptions
from ak.wire.spdy_session import SpdySession, SpdyStream, StreamReset
from ak.wire.websocket import WebSocket, WebSocketClosed

log = logging.getLogger(__name__)

STREAM_CREATION_TIMEOUT = 30  # the kubelet's default


class LocalStreams(ABC):
    """The local client's end of one exec/attach."""

    has_stdin: bool
    has_resize: bool

    @abstractmethod
    async def read_stdin(self) -> bytes:
        """b"" at EOF."""

    @abstractmethod
    async def read_resize(self) -> bytes:
        """b"" at EOF."""

    @abstractmethod
    async def write(self, channel: int, data: bytes) -> None:
        """stdout (1) or stderr (2)."""

    @abstractmethod
    async def finish(self, status: bytes) -> None:
        """Report the outcome (raw error-channel bytes from the remote) and close."""

    @abstractmethod
    async def wait_gone(self) -> None:
        """Return when the local client has gone away."""

    @abstractmethod
    async def aclose(self) -> None: ...


def expected_stream_types(options: StreamOptions, protocol: str) -> set[str]:
    types = {"error"}
    if options.stdin:
        types.add("stdin")
    if options.stdout:
        types.add("stdout")
    if options.stderr:
        types.add("stderr")
    if options.tty and protocol in (channels.SPDY_V4, channels.SPDY_V3):
        types.add("resize")
    return types


class SpdyLocalStreams(LocalStreams):
    def __init__(self, session: SpdySession, protocol: str, streams: dict[str, SpdyStream]) -> None:
        self.session = session
        self.protocol = protocol
        self.streams = streams
        self.has_stdin = "stdin" in streams
        self.has_resize = "resize" in streams

    @classmethod
    async def collect(
        cls, session: SpdySession, protocol: str, options: StreamOptions
    ) -> SpdyLocalStreams | None:
        """Wait for the client's streams (error, stdin, stdout, stderr, resize)."""
        wanted = expected_stream_types(options, protocol)
        got: dict[str, SpdyStream] = {}
        with trio.move_on_after(STREAM_CREATION_TIMEOUT):
            async for stream in session.incoming:
                kind = stream.stream_type or ""
                if kind not in wanted or kind in got:
                    log.debug("exec: unexpected stream type %r; resetting it", kind)
                    await stream.reset()
                    continue
                got[kind] = stream
                if set(got) == wanted:
                    return cls(session, protocol, got)
        log.info("exec: client created %s of streams %s; giving up", sorted(got), sorted(wanted))
        return None

    async def read_stdin(self) -> bytes:
        try:
            return await self.streams["stdin"].receive_some()
        except StreamReset:
            return b""

    async def read_resize(self) -> bytes:
        try:
            return await self.streams["resize"].receive_some()
        except StreamReset:
            return b""

    async def write(self, channel: int, data: bytes) -> None:
        stream = self.streams.get("stdout" if channel == channels.STDOUT else "stderr")
        if stream is not None:
            await stream.send_all(data)

    async def finish(self, status: bytes) -> None:
        try:
            for kind in ("stdout", "stderr"):
                if kind in self.streams:
                    await self.streams[kind].send_eof()
            error = self.streams["error"]
            parsed = channels.parse_status(status) if status else channels.success_status()
            if self.protocol == channels.SPDY_V4:
                payload = status or channels.status_bytes(channels.success_status())
                await error.send_all(payload)
            elif parsed is not None:
                text = channels.status_text(parsed)
                if text:
                    await error.send_all(text.encode())
            elif status:
                await error.send_all(status)
            await error.send_eof()
        except StreamReset:
            pass
        finally:
            await self.session.aclose()

    async def wait_gone(self) -> None:
        await self.session.closed.wait()

    async def aclose(self) -> None:
        await self.session.aclose()


class WebSocketLocalStreams(LocalStreams):
    """A legacy channel-protocol WebSocket (v4.channel.k8s.io, channel.k8s.io, base64)."""

    def __init__(self, ws: WebSocket, options: StreamOptions) -> None:
        self.ws = ws
        self.protocol = channels.ChannelProtocol(ws.subprotocol)
        self.options = options
        self.has_stdin = options.stdin
        self.has_resize = options.tty
        # One message ahead at most: the reader waits for stdin's consumer,
        # so a client typing faster than the remote reads is not read either.
        self._stdin_send, self._stdin = trio.open_memory_channel[bytes](1)
        self._resize_send, self._resize = trio.open_memory_channel[bytes](1)
        self.gone = trio.Event()

    async def start(self, nursery: trio.Nursery) -> None:
        # The kubelet's "connection established" signal: an empty message on
        # the lowest writable channel.
        first = (
            channels.STDOUT
            if self.options.stdout
            else channels.STDERR
            if self.options.stderr
            else channels.ERROR
        )
        await self.ws.send(channels.encode(self.protocol, first, b""))
        nursery.start_soon(self._read)

    async def _read(self) -> None:
        try:
            while True:
                item = channels.decode(self.protocol, await self.ws.receive())
                if isinstance(item, channels.ChannelData):
                    if item.channel == channels.STDIN:
                        await self._stdin_send.send(item.data)
                    elif item.channel == channels.RESIZE:
                        await self._resize_send.send(item.data)
                elif isinstance(item, channels.ChannelClose) and item.channel == channels.STDIN:
                    await self._stdin_send.aclose()
        except (WebSocketClosed, channels.FramingError) as e:
            log.debug("exec: local websocket ended: %s", e)
        finally:
            self.gone.set()
            await self._stdin_send.aclose()
            await self._resize_send.aclose()

    async def read_stdin(self) -> bytes:
        try:
            return await self._stdin.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return b""

    async def read_resize(self) -> bytes:
        try:
            return await self._resize.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return b""

    async def write(self, channel: int, data: bytes) -> None:
        if data:
            await self.ws.send(channels.encode(self.protocol, channel, data))

    async def finish(self, status: bytes) -> None:
        try:
            parsed = channels.parse_status(status) if status else channels.success_status()
            if self.protocol.v4_status:
                payload = status or channels.status_bytes(channels.success_status())
                await self.ws.send(channels.encode(self.protocol, channels.ERROR, payload))
            elif parsed is not None:
                text = channels.status_text(parsed)
                if text:
                    await self.ws.send(
                        channels.encode(self.protocol, channels.ERROR, text.encode())
                    )
            elif status:
                await self.ws.send(channels.encode(self.protocol, channels.ERROR, status))
        except WebSocketClosed:
            pass
        finally:
            await self.ws.close()

    async def wait_gone(self) -> None:
        await self.gone.wait()

    async def aclose(self) -> None:
        await self.ws.close()


async def bridge(local: LocalStreams, remote: RemoteChannels, what: str) -> None:
    """Move bytes until the remote command ends or the local client leaves."""
    status = bytearray()
    finished = False
    try:
        async with trio.open_nursery() as nursery:

            async def stdin() -> None:
                while data := await local.read_stdin():
                    await remote.send(channels.STDIN, data)
                if not await remote.close_channel(channels.STDIN):
                    log.debug("%s: stdin ended; the remote protocol cannot pass that on", what)

            async def resize() -> None:
                while data := await local.read_resize():
                    await remote.send(channels.RESIZE, data)

            async def local_gone() -> None:
                await local.wait_gone()
                log.debug("%s: local client went away", what)
                nursery.cancel_scope.cancel()

            if local.has_stdin:
                nursery.start_soon(stdin)
            if local.has_resize:
                nursery.start_soon(resize)
            nursery.start_soon(local_gone)
            try:
                while True:
                    item = await remote.receive()
                    if isinstance(item, channels.ChannelData):
                        if item.channel in (channels.STDOUT, channels.STDERR):
                            await local.write(item.channel, item.data)
                        elif item.channel == channels.ERROR:
                            status += item.data
            except WebSocketClosed as e:
                log.debug("%s: remote ended (%s)", what, e)
            except StreamReset:
                log.debug("%s: local stream reset", what)
                nursery.cancel_scope.cancel()
                return
            finished = True
            nursery.cancel_scope.cancel()
        if not status:
            message = "the remote stream ended without reporting a status"
            status += channels.status_bytes(channels.internal_error_status(message))
    except WebSocketClosed:
        pass  # the remote vanished while we were writing to it
    finally:
        with trio.CancelScope(shield=True):
            await remote.aclose()
            if finished:
                await local.finish(bytes(status))
            else:
                await local.aclose()
