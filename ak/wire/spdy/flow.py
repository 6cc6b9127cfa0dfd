"""SPDY/3.1 flow control: the window arithmetic, in pure code.

Each direction of each stream has a window, and so has each direction of the
session (WINDOW_UPDATE on stream 0): a sender may have at most that many DATA
bytes in flight that the receiver has not given back. Both start at 64 KiB;
SETTINGS_INITIAL_WINDOW_SIZE changes the streams' (open ones included, by the
difference), never the session's.

* ``RecvWindow``: what we let the peer send. Bytes count against it when they
  arrive and are given back (a WINDOW_UPDATE) only when the consumer has
  *read* them, once half the window is owed, so a consumer that stops reading
  stops the peer after one window.
* ``SendWindow``: what the peer lets us send; a WINDOW_UPDATE from it adds.

spdystream, the SPDY of every Kubernetes component, keeps neither: it never
sends WINDOW_UPDATE or SETTINGS and ignores ours. It paces a sender by not
reading its socket while one of its streams is full, so TCP carries the
backpressure. ``SpdyConnection`` therefore keeps the peer's windows only once
the peer has shown it keeps them (it sent SETTINGS or a WINDOW_UPDATE), and
the session driver bounds what it buffers per stream in any case.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_WINDOW = 64 * 1024  # SPDY/3.1 section 2.6.8: initial stream and session window
MAX_WINDOW = (1 << 31) - 1
SETTINGS_INITIAL_WINDOW_SIZE = 7


class FlowControlError(Exception):
    """A WINDOW_UPDATE or SETTINGS that would take a window past 2^31-1."""


@dataclass
class RecvWindow:
    """The peer's allowance to send to us on one stream or the session."""

    size: int = DEFAULT_WINDOW
    available: int = DEFAULT_WINDOW  # what the peer may still send; < 0 if it overran
    owed: int = 0  # read by our consumer, not yet given back

    def received(self, n: int) -> bool:
        """``n`` bytes arrived; False if they overran the window (a peer
        that does not keep windows, e.g. spdystream)."""
        self.available -= n
        return self.available >= 0

    def consumed(self, n: int) -> int:
        """Our consumer read ``n`` bytes: the WINDOW_UPDATE delta to send now
        (0 until half the window is owed, to keep the updates few)."""
        self.owed += n
        if self.owed < max(1, self.size // 2):
            return 0
        delta, self.owed = min(self.owed, MAX_WINDOW), 0
        self.available = min(self.available + delta, MAX_WINDOW)
        return delta


@dataclass
class SendWindow:
    """Our allowance to send to the peer on one stream or the session."""

    available: int = DEFAULT_WINDOW

    def update(self, delta: int) -> None:
        if self.available + delta > MAX_WINDOW:
            raise FlowControlError(f"window would exceed 2^31-1 (+{delta})")
        self.available += delta

    def sent(self, n: int) -> None:
        self.available -= n
