"""Port-forward sessions to remote pods, one per pod, shared by its connections.

A port-forward WebSocket carries one connection, so each new local connection
would pay a TLS handshake with the remote API server, its authentication, and
the API server's and kubelet's own connections down to the pod: ~13 ms and
~4 ms of AK's CPU per connection, measured (``bench_reach``). A SPDY session
(``portforward.k8s.io``) carries many: each connection is a pair of streams,
``error`` and ``data``, sharing a ``requestID``, as kubectl opens them. So
each pod gets one session, opened by its first connection and kept while it
lives; a session that ends (the pod went, the remote API server restarted, the
kubelet's idle timeout) is replaced by the next connection. SPDY streams also
half-close, which the WebSocket protocol cannot.

The kubelet's spdystream ignores SPDY windows, so a session whose reader
waits for one slow client (``SpdySession.stalled``) moves nothing else until
that client reads: a new connection then gets a session of its own rather
than queue behind it.
"""

from __future__ import annotations

import itertools
import logging

import trio

from ak.kube.client import KubeClient
from ak.kubelet.remote import RemotePod, open_spdy
from ak.wire.spdy_session import SpdySession, SpdyStream

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"


class Forwarder:
    def __init__(self, remote: KubeClient) -> None:
        self.remote = remote
        self._sessions: dict[RemotePod, list[SpdySession]] = {}
        self._opening: dict[RemotePod, trio.Lock] = {}
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        """Hold the sessions' reader tasks until cancelled, then close them all."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await trio.sleep_forever()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                for sessions in list(self._sessions.values()):
                    for session in list(sessions):
                        await session.aclose()
            self._sessions.clear()

    async def streams(self, pod: RemotePod, port: int) -> tuple[SpdyStream, SpdyStream]:
        """A new (error, data) stream pair to ``port`` of ``pod``.

        Raises websocket.Rejected, OSError or trio.TooSlowError if no session
        could be opened, spdy_session.StreamReset if the session refused."""
        session = await self._session(pod)
        request_id = str(next(self._ids))
        base = (("port", str(port)), ("requestid", request_id))
        # Both at once: the kubelet pairs them by requestID, in either order.
        error, data = await session.open_streams(
            [(("streamtype", "error"), *base), (("streamtype", "data"), *base)]
        )
        return error, data

    async def close(self, pod: RemotePod) -> None:
        sessions = self._sessions.pop(pod, [])
        self._opening.pop(pod, None)
        for session in sessions:
            await session.aclose()

    def _usable(self, pod: RemotePod) -> SpdySession | None:
        for session in self._sessions.get(pod, []):
            if not session.closed.is_set() and not session.stalled:
                return session
        return None

    async def _session(self, pod: RemotePod) -> SpdySession:
        session = self._usable(pod)
        if session is not None:
            return session
        # One opener per pod: a burst of first connections shares its session.
        async with self._opening.setdefault(pod, trio.Lock()):
            session = self._usable(pod)
            if session is not None:
                return session
            if self._nursery is None:
                raise OSError("the port-forward pool is not running")
            session = await open_spdy(self.remote, pod.path("portforward"), [], PROTOCOL)
            sessions = self._sessions.setdefault(pod, [])
            sessions.append(session)
            self._nursery.start_soon(self._read, pod, session)
            log.debug(
                "port-forward session %d to %s/%s opened", len(sessions), pod.namespace, pod.name
            )
            return session

    async def _read(self, pod: RemotePod, session: SpdySession) -> None:
        try:
            await session.run()
        finally:
            sessions = self._sessions.get(pod, [])
            if session in sessions:
                sessions.remove(session)
                if not sessions:
                    del self._sessions[pod]
            with trio.CancelScope(shield=True):
                await session.aclose()
            log.debug("port-forward session to %s/%s ended", pod.namespace, pod.name)
