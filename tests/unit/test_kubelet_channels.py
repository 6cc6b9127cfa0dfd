"""Channel framing (v1/v4/v5, base64, port-forward) and status reporting."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ak.kubelet import channels
from ak.kubelet.channels import ChannelClose, ChannelData, ChannelProtocol, FramingError

ALL = [channels.V5, channels.V4, channels.V4_BASE64, channels.V1, channels.V1_BASE64, ""]


@pytest.mark.parametrize("name", ALL)
@given(channel=st.integers(min_value=0, max_value=9), data=st.binary(max_size=300))
def test_round_trip(name: str, channel: int, data: bytes) -> None:
    proto = ChannelProtocol(name)
    assert channels.decode(proto, channels.encode(proto, channel, data)) == ChannelData(
        channel, data
    )


def test_wire_forms() -> None:
    assert channels.encode(ChannelProtocol(channels.V4), 1, b"hi") == b"\x01hi"
    assert channels.encode(ChannelProtocol(channels.V4_BASE64), 2, b"hi") == "2aGk="
    assert channels.encode_close(ChannelProtocol(channels.V5), 0) == b"\xff\x00"


def test_v5_close_signal() -> None:
    assert channels.decode(ChannelProtocol(channels.V5), b"\xff\x00") == ChannelClose(0)
    # v4 has no close signal: 255 is just a channel number there
    assert channels.decode(ChannelProtocol(channels.V4), b"\xff\x00") == ChannelData(255, b"\x00")
    with pytest.raises(ValueError):
        channels.encode_close(ChannelProtocol(channels.V4), 0)
    with pytest.raises(FramingError):
        channels.decode(ChannelProtocol(channels.V5), b"\xff\x00\x01")


def test_empty_messages_are_ignored() -> None:
    assert channels.decode(ChannelProtocol(channels.V4), b"") is None
    assert channels.decode(ChannelProtocol(channels.V4_BASE64), "") is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (channels.V4, "1text"),
        (channels.V4_BASE64, b"\x01binary"),
        (channels.V4_BASE64, "1not base64!"),
        (channels.V4_BASE64, "\x001"),
    ],
)
def test_framing_errors(name: str, message: bytes | str) -> None:
    with pytest.raises(FramingError):
        channels.decode(ChannelProtocol(name), message)


def test_negotiation_takes_the_first_offered_that_we_know() -> None:
    server = channels.SERVER_WEBSOCKET_PROTOCOLS
    assert channels.negotiate([channels.V5, channels.V4, channels.V1], server) == channels.V4
    assert channels.negotiate([channels.V1_BASE64, channels.V4], server) == channels.V1_BASE64
    assert channels.negotiate([], server) == ""
    assert channels.negotiate(["x"], server) is None


def test_port_prefix_and_ports() -> None:
    assert channels.port_prefix(8080) == b"\x90\x1f"
    assert channels.parse_ports("80, 8080") == [80, 8080]
    for bad in ("", "0", "65536", "x", "80,"):
        with pytest.raises(ValueError):
            channels.parse_ports(bad)


def test_status_helpers() -> None:
    failure = channels.exit_code_status(3)
    assert channels.exit_code(failure) == 3
    assert channels.exit_code(channels.success_status()) == 0
    assert channels.status_text(channels.success_status()) is None
    assert "exit code" in (channels.status_text(failure) or "")
    raw = channels.status_bytes(failure)
    assert json.loads(raw)["kind"] == "Status"
    assert channels.parse_status(raw) == {"kind": "Status", "apiVersion": "v1", **failure}
    assert channels.parse_status(b"plain text error") is None
    internal = channels.internal_error_status("exit status 3")
    assert internal["code"] == 500 and channels.exit_code(internal) is None
