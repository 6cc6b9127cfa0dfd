"""Kubernetes stream multiplexing over WebSocket messages and SPDY streams, sans-io.

WebSocket subprotocols (apimachinery wsstream, cri-streaming):

* ``channel.k8s.io`` / ``v4.channel.k8s.io``: each binary message is
  ``[channel byte] + payload``;
* ``base64.channel.k8s.io`` / ``v4.base64.channel.k8s.io``: text messages
  ``chr(ord('0') + channel) + base64(payload)``;
* ``v5.channel.k8s.io``: as v4, plus ``[255, channel]`` half-closes a channel;
* ``""`` (no subprotocol): binary framing, oldest behaviour.

Channels for exec/attach: 0 stdin, 1 stdout, 2 stderr, 3 error (status),
4 resize. Port-forward over WebSocket: port i uses channel 2i for data and
2i+1 for errors; the first message on each carries the port (uint16 LE).

v4+ report the outcome as a JSON ``metav1.Status`` on the error channel;
older versions write plain text and nothing on success.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass

from ak.core.types import Obj

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_CHANNEL = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
BINARY = ""

# What a kubelet accepts from a WebSocket client, in its order of preference
# when the client offers several (the first one the client lists that we know
# wins, as in wsstream).
SERVER_WEBSOCKET_PROTOCOLS = (V4, V4_BASE64, V1, V1_BASE64, BINARY)

# SPDY exec/attach protocols (X-Stream-Protocol-Version) a kubelet accepts.
SPDY_V4 = "v4.channel.k8s.io"
SPDY_V3 = "v3.channel.k8s.io"
SPDY_V2 = "v2.channel.k8s.io"
SPDY_V1 = "channel.k8s.io"
SPDY_REMOTECOMMAND_PROTOCOLS = (SPDY_V4, SPDY_V3, SPDY_V2, SPDY_V1)
SPDY_PORTFORWARD_PROTOCOLS = ("portforward.k8s.io",)


class FramingError(ValueError):
    """A message that does not follow the negotiated channel framing."""


@dataclass(frozen=True)
class ChannelProtocol:
    """One negotiated WebSocket subprotocol."""

    name: str

    @property
    def base64(self) -> bool:
        return "base64" in self.name

    @property
    def v4_status(self) -> bool:
        """Whether the error channel carries a JSON Status (v4 and later)."""
        return self.name.startswith(("v4.", "v5."))

    @property
    def can_close(self) -> bool:
        return self.name == V5


@dataclass(frozen=True)
class ChannelData:
    channel: int
    data: bytes


@dataclass(frozen=True)
class ChannelClose:
    """v5: the sender will write no more on ``channel``."""

    channel: int


def negotiate(offered: list[str], supported: tuple[str, ...]) -> str | None:
    """The first client-offered protocol we support; ``""`` when the client
    offered none and binary framing is acceptable; None when nothing fits."""
    if not offered:
        return BINARY if BINARY in supported else None
    for name in offered:
        if name and name in supported:
            return name
    return None


def encode(protocol: ChannelProtocol, channel: int, data: bytes) -> bytes | str:
    """One WebSocket message: bytes for binary framing, str for base64 framing."""
    if not 0 <= channel < CLOSE_CHANNEL:
        raise ValueError(f"channel {channel} out of range")
    if protocol.base64:
        return chr(ord("0") + channel) + base64.b64encode(data).decode()
    return bytes([channel]) + data


def encode_close(protocol: ChannelProtocol, channel: int) -> bytes:
    if not protocol.can_close:
        raise ValueError(f"{protocol.name or 'binary'} cannot half-close a channel")
    return bytes([CLOSE_CHANNEL, channel])


def decode(protocol: ChannelProtocol, message: bytes | str) -> ChannelData | ChannelClose | None:
    """One received WebSocket message; None for an empty one (ignored by peers)."""
    if protocol.base64:
        if isinstance(message, bytes):
            raise FramingError("binary message on a base64 channel protocol")
        if not message:
            return None
        channel = ord(message[0]) - ord("0")
        if not 0 <= channel < CLOSE_CHANNEL:
            raise FramingError(f"bad base64 channel marker {message[0]!r}")
        try:
            return ChannelData(channel, base64.b64decode(message[1:], validate=True))
        except (binascii.Error, ValueError) as e:
            raise FramingError(f"bad base64 payload: {e}") from e
    if isinstance(message, str):
        raise FramingError("text message on a binary channel protocol")
    if not message:
        return None
    channel = message[0]
    if channel == CLOSE_CHANNEL and protocol.can_close:
        if len(message) != 2:
            raise FramingError("close signal must be exactly 2 bytes")
        return ChannelClose(message[1])
    return ChannelData(channel, bytes(message[1:]))


# --- port-forward -------------------------------------------------------------


def port_prefix(port: int) -> bytes:
    """The first payload on each port-forward WebSocket channel."""
    return struct.pack("<H", port)


def parse_ports(text: str) -> list[int]:
    """``"80,8080"`` -> [80, 8080]; every port must be 1..65535."""
    ports = []
    for raw in text.split(","):
        part = raw.strip()
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise ValueError(f"invalid port {part!r}")
        ports.append(int(part))
    if not ports:
        raise ValueError("no ports")
    return ports


# --- status reporting ------------------------------------------------------------


def success_status() -> Obj:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(code: int) -> Obj:
    """What a kubelet reports for a command that exited non-zero (client-go
    reads the code from the ExitCode cause)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error_status(message: str) -> Obj:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def status_bytes(status: Obj) -> bytes:
    return json.dumps({"kind": "Status", "apiVersion": "v1", **status}).encode()


def parse_status(raw: bytes) -> Obj | None:
    """A JSON Status from an error channel, or None if it is not one (v1-v3 text)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "status" in value else None


def status_text(status: Obj) -> str | None:
    """The v1-v3 rendering of a Status: nothing on success, its message otherwise."""
    if status.get("status") == "Success":
        return None
    return str(status.get("message") or status.get("reason") or "error")


def exit_code(status: Obj) -> int | None:
    """The exit code a Status reports; 0 for success, None if it names none."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                return None
    return None
