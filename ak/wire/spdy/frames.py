"""SPDY/3.1 on the wire: frame types, status codes, events, header blocks.

The stateless half of the codec: what a frame is and how its bytes are laid
out, with nothing about which frame is allowed when (that is ``connection``).
The events are the vocabulary of both directions: ``SpdyConnection.events()``
yields them and ``SpdyConnection.send()`` takes them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

VERSION = 3
MAX_FRAME_LENGTH = (1 << 24) - 1
MAX_STREAM_ID = (1 << 31) - 1
MAX_HEADER_BYTES = 1 << 20  # a decompressed header block larger than this is an attack

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_SETTINGS_CLEAR = 0x01

Headers = tuple[tuple[str, str], ...]


class FrameType(IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


class SpdyError(Exception):
    """Base of this module's errors."""


class ProtocolError(SpdyError):
    """The peer broke the protocol so badly the connection must end.

    A GOAWAY with ``status`` is already queued in ``data_to_send()``.
    """

    def __init__(self, message: str, status: GoAwayStatus = GoAwayStatus.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.status = status


class LocalProtocolError(SpdyError):
    """We asked for something the protocol does not allow (a bug of the caller)."""


# --- events -----------------------------------------------------------------


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers = ()
    associated_id: int = 0
    priority: int = 0
    slot: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers = ()
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int = RstStatus.CANCEL


@dataclass(frozen=True)
class Settings:
    # (flags, id, value) per entry
    entries: tuple[tuple[int, int, int], ...] = ()
    clear: bool = False


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GoAwayStatus.OK


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers = ()
    fin: bool = False


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes = b""
    fin: bool = False


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer closed its side of the transport."""


Event = (
    SynStream
    | SynReply
    | RstStream
    | Settings
    | Ping
    | GoAway
    | HeadersFrame
    | WindowUpdate
    | Data
    | ConnectionClosed
)


# --- header blocks ------------------------------------------------------------


def encode_header_block(headers: Sequence[tuple[str, str]]) -> bytes:
    """Uncompressed name/value block. Names are lowercased; repeated names are
    joined with NUL into one entry, as SPDY requires unique names."""
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.lower(), []).append(value)
    out = [struct.pack(">I", len(merged))]
    for name, values in merged.items():
        n, v = name.encode(), "\0".join(values).encode()
        if not n:
            raise LocalProtocolError("empty header name")
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def decode_header_block(raw: bytes) -> Headers:
    """Inverse of ``encode_header_block``; NUL-joined values become separate pairs."""
    try:
        (count,) = struct.unpack_from(">I", raw, 0)
        pos = 4
        pairs: list[tuple[str, str]] = []
        seen: set[str] = set()
        for _ in range(count):
            (nlen,) = struct.unpack_from(">I", raw, pos)
            pos += 4
            name = raw[pos : pos + nlen]
            if len(name) != nlen or nlen == 0:
                raise ProtocolError("header block: bad name length")
            pos += nlen
            (vlen,) = struct.unpack_from(">I", raw, pos)
            pos += 4
            value = raw[pos : pos + vlen]
            if len(value) != vlen:
                raise ProtocolError("header block: value runs past the block")
            pos += vlen
            text = name.decode()
            if text != text.lower():
                raise ProtocolError(f"header block: name {text!r} is not lowercase")
            if text in seen:
                raise ProtocolError(f"header block: name {text!r} appears twice")
            seen.add(text)
            pairs.extend((text, v) for v in value.decode().split("\0"))
    except struct.error as e:
        raise ProtocolError("header block: truncated") from e
    except UnicodeDecodeError as e:
        raise ProtocolError("header block: not UTF-8") from e
    if pos != len(raw):
        raise ProtocolError("header block: trailing bytes")
    return tuple(pairs)


def header(headers: Headers, name: str) -> str | None:
    """The first value of ``name`` (lowercase), or None."""
    for n, v in headers:
        if n == name:
            return v
    return None


# --- frame bytes ----------------------------------------------------------------


def control_frame(ftype: FrameType, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_LENGTH:
        raise LocalProtocolError("control frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


def data_frames(stream_id: int, data: bytes, fin: bool) -> bytes:
    """DATA frames carrying ``data``, cut at the 24-bit length limit; FIN on the last."""
    out = bytearray()
    view = memoryview(data)
    while True:
        chunk, view = view[:MAX_FRAME_LENGTH], view[MAX_FRAME_LENGTH:]
        last = len(view) == 0
        flags = FLAG_FIN if (fin and last) else 0
        out += struct.pack(">II", stream_id, (flags << 24) | len(chunk)) + chunk
        if last:
            return bytes(out)
