"""The kubelet port refuses TLS below 1.2 and speaks only HTTP/1.1 over ALPN."""

from __future__ import annotations

import socket
import ssl

import pytest

from tests.conftest import AKNode

pytestmark = pytest.mark.cluster


def handshake(port: int, version: ssl.TLSVersion, alpn: list[str] | None = None) -> str | None:
    """The negotiated ALPN protocol ("" if none); raises ssl.SSLError if refused."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Let the client offer old versions, so a refusal can only come from AK.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        return tls.selected_alpn_protocol() or ""


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_old_tls_refused_and_alpn_is_http11(ak_node: AKNode) -> None:
    port = ak_node.ak.kubelet_port
    assert handshake(port, ssl.TLSVersion.TLSv1_2, ["h2", "http/1.1"]) == "http/1.1"
    assert handshake(port, ssl.TLSVersion.TLSv1_3, ["h2", "http/1.1"]) == "http/1.1"
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            handshake(port, old)
