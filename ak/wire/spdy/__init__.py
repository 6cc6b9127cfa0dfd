"""A sans-io SPDY/3.1 codec: bytes in -> events out, events in -> bytes out.

The Kubernetes API server speaks SPDY/3.1 to kubelets for exec, attach and
port-forward (moby/spdystream on its side). This package is the protocol
alone, in the manner of h11 and wsproto: no sockets, no clocks, no tasks.

* ``receive_data(b)`` feeds bytes (``b""`` = the peer closed its side);
  ``events()`` yields what they mean.
* ``send(event)`` turns one of our events into bytes, to be written in the
  order ``send`` was called (header compression is stateful).
* Frames the protocol answers by itself (a PING echo, RST_STREAM for DATA on
  a stream that does not exist, GOAWAY before a fatal error) are queued and
  returned by ``data_to_send()``.

Header blocks go through one zlib stream per direction per connection, primed
with the SPDY/3 dictionary and flushed with Z_SYNC_FLUSH after every block.
Every received block is decompressed, even on a stream about to be refused,
or the two zlib states drift apart.

Flow control (``flow``): per-stream and session receive windows given back
with WINDOW_UPDATE only as the consumer reads (``consumed``), and the peer's
windows kept when sending (``send_window``) once the peer has shown it keeps
them; spdystream, which neither sends nor honours windows, paces through TCP.

``frames`` is the wire format (frame types, status codes, events, errors,
header blocks); ``connection`` the state machine; ``flow`` the window
arithmetic; ``dictionary`` the zlib
dictionary of SPDY/3. Callers import the package: ``from ak.wire import spdy``.
"""

from ak.wire.spdy.connection import SpdyConnection
from ak.wire.spdy.flow import DEFAULT_WINDOW, MAX_WINDOW, RecvWindow, SendWindow
from ak.wire.spdy.frames import (
    FLAG_FIN,
    FLAG_SETTINGS_CLEAR,
    FLAG_UNIDIRECTIONAL,
    MAX_FRAME_LENGTH,
    MAX_HEADER_BYTES,
    MAX_STREAM_ID,
    VERSION,
    ConnectionClosed,
    Data,
    Event,
    FrameType,
    GoAway,
    GoAwayStatus,
    Headers,
    HeadersFrame,
    LocalProtocolError,
    Ping,
    ProtocolError,
    RstStatus,
    RstStream,
    Settings,
    SpdyError,
    SynReply,
    SynStream,
    WindowUpdate,
    control_frame,
    data_frames,
    decode_header_block,
    encode_header_block,
    header,
)

__all__ = [
    "DEFAULT_WINDOW",
    "FLAG_FIN",
    "FLAG_SETTINGS_CLEAR",
    "FLAG_UNIDIRECTIONAL",
    "MAX_FRAME_LENGTH",
    "MAX_HEADER_BYTES",
    "MAX_STREAM_ID",
    "MAX_WINDOW",
    "VERSION",
    "ConnectionClosed",
    "Data",
    "Event",
    "FrameType",
    "GoAway",
    "GoAwayStatus",
    "Headers",
    "HeadersFrame",
    "LocalProtocolError",
    "Ping",
    "ProtocolError",
    "RecvWindow",
    "RstStatus",
    "RstStream",
    "SendWindow",
    "Settings",
    "SpdyConnection",
    "SpdyError",
    "SynReply",
    "SynStream",
    "WindowUpdate",
    "control_frame",
    "data_frames",
    "decode_header_block",
    "encode_header_block",
    "header",
]
