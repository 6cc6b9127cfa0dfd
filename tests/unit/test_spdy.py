"""The sans-io SPDY/3.1 codec: frames, header compression, stream state, bad input."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ak.wire import spdy
from ak.wire.spdy.dictionary import SPDY3_DICTIONARY, SPDY3_DICTIONARY_SHA256


def pair() -> tuple[spdy.SpdyConnection, spdy.SpdyConnection]:
    return spdy.SpdyConnection(client=True), spdy.SpdyConnection()


def feed(conn: spdy.SpdyConnection, data: bytes) -> list[spdy.Event]:
    conn.receive_data(data)
    return list(conn.events())


def control(ftype: int, flags: int, payload: bytes, version: int = 3) -> bytes:
    return struct.pack(">HHI", 0x8000 | version, ftype, (flags << 24) | len(payload)) + payload


def data_frame(sid: int, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">II", sid, (flags << 24) | len(payload)) + payload


def open_stream(
    client: spdy.SpdyConnection, server: spdy.SpdyConnection, headers: spdy.Headers = ()
) -> int:
    sid = client.next_stream_id()
    events = feed(server, client.send(spdy.SynStream(sid, headers)))
    assert events == [spdy.SynStream(sid, headers)]
    feed(client, server.send(spdy.SynReply(sid)))
    return sid


# --- dictionary and header blocks ---------------------------------------------------------


def test_dictionary_is_the_spdy3_one() -> None:
    assert len(SPDY3_DICTIONARY) == 1423
    assert hashlib.sha256(SPDY3_DICTIONARY).hexdigest() == SPDY3_DICTIONARY_SHA256
    assert SPDY3_DICTIONARY.startswith(b"\x00\x00\x00\x07options")
    assert SPDY3_DICTIONARY.endswith(b",enq=0.")


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20)
values = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=40
)


@given(st.dictionaries(names, st.lists(values, min_size=1, max_size=3), max_size=8))
def test_header_block_round_trip(headers: dict[str, list[str]]) -> None:
    pairs = tuple((n, v) for n, vs in headers.items() for v in vs)
    assert spdy.decode_header_block(spdy.encode_header_block(pairs)) == pairs


def test_header_names_are_lowercased_and_repeats_joined_with_nul() -> None:
    raw = spdy.encode_header_block([("StreamType", "error"), ("x", "1"), ("X", "2")])
    assert b"streamtype" in raw and b"1\x002" in raw
    assert spdy.decode_header_block(raw) == (("streamtype", "error"), ("x", "1"), ("x", "2"))


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x00",  # truncated count
        struct.pack(">I", 1) + struct.pack(">I", 10) + b"abc",  # name runs past the end
        struct.pack(">II", 1, 0) + struct.pack(">I", 0),  # empty name
        struct.pack(">II", 1, 1) + b"A" + struct.pack(">I", 0),  # uppercase name
        struct.pack(">II", 2, 1) + b"a" + struct.pack(">I", 0) + struct.pack(">I", 1) + b"a"
        + struct.pack(">I", 0),  # duplicate name
        spdy.encode_header_block([("a", "b")]) + b"x",  # trailing bytes
    ],
)  # fmt: skip
def test_bad_header_blocks(raw: bytes) -> None:
    with pytest.raises(spdy.ProtocolError):
        spdy.decode_header_block(raw)


# --- compression ------------------------------------------------------------------------


def test_header_compression_is_standard_zlib_with_the_dictionary() -> None:
    """What Go's zlib.NewReaderDict (spdystream) reads: a zlib stream primed with the dictionary."""
    client = spdy.SpdyConnection(client=True)
    frame = client.send(spdy.SynStream(1, (("streamtype", "error"),)))
    block = frame[8 + 10 :]
    raw = zlib.decompressobj(zdict=SPDY3_DICTIONARY).decompress(block)
    assert spdy.decode_header_block(raw) == (("streamtype", "error"),)


def test_compression_state_spans_frames() -> None:
    client, server = pair()
    headers = (("streamtype", "stdout"), ("requestid", "0"), ("port", "8080"))
    first = client.send(spdy.SynStream(1, headers))
    second = client.send(spdy.SynStream(3, headers))
    # The second block refers back to the first: smaller, and undecodable alone.
    assert len(second) < len(first)
    with pytest.raises(zlib.error):
        zlib.decompressobj(zdict=SPDY3_DICTIONARY).decompress(second[18:])
    assert feed(server, first + second) == [spdy.SynStream(1, headers), spdy.SynStream(3, headers)]


def test_server_compressor_is_independent_of_the_client_one() -> None:
    client, server = pair()
    for sid in (1, 3, 5):
        feed(server, client.send(spdy.SynStream(sid, (("streamtype", "data"),))))
        events = feed(client, server.send(spdy.SynReply(sid, (("x", str(sid)),))))
        assert events == [spdy.SynReply(sid, (("x", str(sid)),))]


def test_refused_stream_headers_are_still_decompressed() -> None:
    client, server = pair()
    feed(server, client.send(spdy.SynStream(3, (("a", "1"),))))
    # id 1 after 3: refused with RST, but its block must still feed the inflater
    stale = client._compress_headers((("a", "2"),))
    bad = control(spdy.FrameType.SYN_STREAM, 0, struct.pack(">IIBB", 1, 0, 0, 0) + stale)
    assert feed(server, bad) == []
    rst = server.data_to_send()
    assert struct.unpack(">II", rst[8:]) == (1, spdy.RstStatus.PROTOCOL_ERROR)
    client._state.last_local_stream = 3
    assert feed(server, client.send(spdy.SynStream(5, (("a", "3"),)))) == [
        spdy.SynStream(5, (("a", "3"),))
    ]


# --- frames both ways ------------------------------------------------------------------------


def test_syn_stream_fields_round_trip() -> None:
    client, server = pair()
    event = spdy.SynStream(
        1, (("k", "v"),), associated_id=0, priority=5, slot=2, fin=True, unidirectional=True
    )
    assert feed(server, client.send(event)) == [event]
    assert not server.is_open(1)  # FIN + unidirectional: nothing left to do on it


def test_data_both_ways_and_half_close() -> None:
    client, server = pair()
    sid = open_stream(client, server)
    assert feed(server, client.send(spdy.Data(sid, b"hello"))) == [spdy.Data(sid, b"hello")]
    assert feed(client, server.send(spdy.Data(sid, b"world"))) == [spdy.Data(sid, b"world")]
    assert feed(server, client.send(spdy.Data(sid, b"", fin=True))) == [spdy.Data(sid, b"", True)]
    assert server.is_open(sid)  # half-closed by the client only
    assert feed(client, server.send(spdy.Data(sid, b"bye", fin=True))) == [
        spdy.Data(sid, b"bye", True)
    ]
    assert not server.is_open(sid) and not client.is_open(sid)
    with pytest.raises(spdy.LocalProtocolError):
        server.send(spdy.Data(sid, b"late"))


def test_large_data_is_split_into_frames() -> None:
    client, server = pair()
    sid = open_stream(client, server)
    payload = bytes(range(256)) * (70_000)  # > 2^24 - 1
    wire = server.send(spdy.Data(sid, payload, fin=True))
    events = feed(client, wire)
    assert len(events) == 2
    assert b"".join(e.data for e in events if isinstance(e, spdy.Data)) == payload
    assert [e.fin for e in events if isinstance(e, spdy.Data)] == [False, True]


@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30))
def test_frames_split_across_reads(cuts: list[int]) -> None:
    client, server = pair()
    wire = client.send(spdy.SynStream(1, (("streamtype", "stdin"),)))
    wire += client.send(spdy.Data(1, b"x" * 100))
    wire += client.send(spdy.Ping(1))
    wire += client.send(spdy.Data(1, b"", fin=True))
    events: list[spdy.Event] = []
    pos = 0
    for cut in cuts * 10:
        if pos >= len(wire):
            break
        events += feed(server, wire[pos : pos + cut])  # b"" would mean EOF
        pos += cut
    if pos < len(wire):
        events += feed(server, wire[pos:])
    assert events == [
        spdy.SynStream(1, (("streamtype", "stdin"),)),
        spdy.Data(1, b"x" * 100),
        spdy.Ping(1),
        spdy.Data(1, b"", True),
    ]


def test_data_before_syn_reply_is_refused_locally() -> None:
    client, server = pair()
    feed(server, client.send(spdy.SynStream(1)))
    with pytest.raises(spdy.LocalProtocolError):
        server.send(spdy.Data(1, b"too early"))


# --- ping, reset, goaway ----------------------------------------------------------------------


def test_peer_ping_is_echoed_our_own_is_not() -> None:
    client, server = pair()
    assert feed(server, client.send(spdy.Ping(client.next_ping_id()))) == [spdy.Ping(1)]
    echo = server.data_to_send()
    assert feed(client, echo) == [spdy.Ping(1)]
    assert client.data_to_send() == b""  # a reply to our ping is not answered again
    assert feed(client, server.send(spdy.Ping(server.next_ping_id()))) == [spdy.Ping(2)]
    assert feed(server, client.data_to_send()) == [spdy.Ping(2)]


def test_reset_by_peer_closes_the_stream() -> None:
    client, server = pair()
    sid = open_stream(client, server)
    assert feed(server, client.send(spdy.RstStream(sid, spdy.RstStatus.CANCEL))) == [
        spdy.RstStream(sid, spdy.RstStatus.CANCEL)
    ]
    assert not server.is_open(sid)
    with pytest.raises(spdy.LocalProtocolError):
        server.send(spdy.Data(sid, b"x"))


def test_data_on_unknown_stream_is_answered_with_rst() -> None:
    _, server = pair()
    assert feed(server, data_frame(7, b"?")) == []
    out = server.data_to_send()
    assert struct.unpack(">II", out[8:]) == (7, spdy.RstStatus.INVALID_STREAM)


def test_late_data_after_our_reset_is_dropped_quietly() -> None:
    client, server = pair()
    sid = open_stream(client, server)
    server.send(spdy.RstStream(sid, spdy.RstStatus.CANCEL))
    assert feed(server, client.send(spdy.Data(sid, b"in flight"))) == []
    assert server.data_to_send() == b""


def test_data_after_peer_fin_is_stream_already_closed() -> None:
    client, server = pair()
    sid = open_stream(client, server)
    feed(server, client.send(spdy.Data(sid, b"", fin=True)))
    assert feed(server, data_frame(sid, b"more")) == []
    assert struct.unpack(">II", server.data_to_send()[8:]) == (
        sid,
        spdy.RstStatus.STREAM_ALREADY_CLOSED,
    )


def test_goaway_both_ways() -> None:
    client, server = pair()
    open_stream(client, server)
    assert feed(client, server.goaway()) == [spdy.GoAway(1, spdy.GoAwayStatus.OK)]
    assert client.goaway_received
    with pytest.raises(spdy.LocalProtocolError):
        client.send(spdy.SynStream(3))


def test_new_streams_after_our_goaway_are_refused() -> None:
    client, server = pair()
    server.goaway()
    assert feed(server, client.send(spdy.SynStream(1))) == []
    assert struct.unpack(">II", server.data_to_send()[8:]) == (1, spdy.RstStatus.REFUSED_STREAM)


def test_settings_window_update_headers_are_reported() -> None:
    client, server = pair()
    sid = open_stream(client, server)
    settings = spdy.Settings(((1, 7, 65536),), clear=True)
    assert feed(server, client.send(settings)) == [settings]
    assert feed(server, client.send(spdy.WindowUpdate(sid, 10))) == [spdy.WindowUpdate(sid, 10)]
    hdrs = spdy.HeadersFrame(sid, (("a", "b"),), fin=True)
    assert feed(server, client.send(hdrs)) == [hdrs]


def test_unknown_control_frames_are_ignored() -> None:
    _, server = pair()
    assert feed(server, control(5, 0, b"whatever")) == []  # type 5 was NOOP in SPDY/2
    assert server.data_to_send() == b""


def test_eof_is_reported_once() -> None:
    _, server = pair()
    assert feed(server, b"") == [spdy.ConnectionClosed()]
    assert list(server.events()) == []


# --- bad frames: the connection ends with GOAWAY(PROTOCOL_ERROR) -------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        control(spdy.FrameType.PING, 0, b"\0\0\0\1", version=2),
        control(spdy.FrameType.PING, 0, b"\0\0\1"),
        control(spdy.FrameType.RST_STREAM, 0, b"\0" * 4),
        control(spdy.FrameType.GOAWAY, 0, b"\0" * 4),
        control(spdy.FrameType.WINDOW_UPDATE, 0, b"\0" * 9),
        control(spdy.FrameType.SETTINGS, 0, struct.pack(">I", 2) + b"\0" * 8),
        control(spdy.FrameType.SYN_STREAM, 0, b"\0" * 5),
        control(spdy.FrameType.SYN_STREAM, 0, struct.pack(">IIBB", 2, 0, 0, 0)),
        control(spdy.FrameType.SYN_STREAM, 0, struct.pack(">IIBB", 1, 0, 0, 0) + b"not zlib"),
    ],
    ids=[
        "version-2",
        "short-ping",
        "short-rst",
        "short-goaway",
        "long-window-update",
        "settings-count",
        "short-syn",
        "even-id-from-client",
        "garbage-header-block",
    ],
)
def test_bad_frames_end_the_connection(wire: bytes) -> None:
    _, server = pair()
    with pytest.raises(spdy.ProtocolError):
        feed(server, wire)
    out = server.data_to_send()
    assert struct.unpack(">HHI", out[:8])[1] == spdy.FrameType.GOAWAY
    assert struct.unpack(">II", out[8:16])[1] == spdy.GoAwayStatus.PROTOCOL_ERROR
    with pytest.raises(spdy.ProtocolError):  # and stays failed
        list(server.events())


def test_oversized_header_block_is_refused() -> None:
    client, server = pair()
    frame = client.send(spdy.SynStream(1, (("big", "x" * (2 << 20)),)))
    with pytest.raises(spdy.ProtocolError, match="1 MiB"):
        feed(server, frame)


def test_syn_reply_rules() -> None:
    client, server = pair()
    sid = open_stream(client, server)
    with pytest.raises(spdy.LocalProtocolError):
        server.send(spdy.SynReply(sid))  # twice
    with pytest.raises(spdy.LocalProtocolError):
        server.send(spdy.SynReply(99))  # unknown
    # A second SYN_REPLY from the peer is a stream error.
    own = server.next_stream_id()
    feed(client, server.send(spdy.SynStream(own)))
    feed(server, client.send(spdy.SynReply(own)))
    dup = control(
        spdy.FrameType.SYN_REPLY, 0, struct.pack(">I", own) + client._compress_headers(())
    )
    assert feed(server, dup) == []
    assert struct.unpack(">II", server.data_to_send()[8:]) == (own, spdy.RstStatus.STREAM_IN_USE)
