"""Kubeconfig fields that change where and how AK connects, and what it says when it cannot."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
import yaml

from ak.errors import ConfigError
from ak.kube.client import KubeClient
from ak.kube.config import ClusterConfig, load_kubeconfig
from ak.kube.errors import Unreachable, transport_reason
from tests.testbed.pki import CertificateAuthority


def _kubeconfig(tmp_path: Path, **cluster: str) -> str:
    ca = CertificateAuthority(tmp_path / "pki")
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority": str(ca.pair.cert),
                    **cluster,
                },
            }
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_tls_server_name_is_kept(tmp_path: Path) -> None:
    conf = load_kubeconfig(_kubeconfig(tmp_path, **{"tls-server-name": "api.example"}))
    assert conf.tls_server_name == "api.example"
    assert conf.server == "https://127.0.0.1:6443"
    assert conf.token() == "t"


def test_without_tls_server_name_the_url_host_is_checked(tmp_path: Path) -> None:
    assert load_kubeconfig(_kubeconfig(tmp_path)).tls_server_name is None


def test_proxy_url_is_refused_with_its_reason(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path, **{"proxy-url": "socks5://127.0.0.1:1080"})
    reason = r"proxy-url \(socks5://127.0.0.1:1080\) is not supported"
    with pytest.raises(ConfigError, match=reason):
        load_kubeconfig(path)


def test_an_empty_transport_error_says_its_cause() -> None:
    # What httpx raises for a refused certificate under trio: ConnectError('').
    try:
        try:
            try:
                raise ssl.SSLCertVerificationError(
                    1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
                )
            except ssl.SSLError as e:
                raise trio.BrokenResourceError from e
        except trio.BrokenResourceError as e:
            raise httpx.ConnectError("") from e
    except httpx.ConnectError as e:
        error = Unreachable("remote API server https://127.0.0.2:6443", e)
    assert error.reason.startswith("ConnectError: ")
    assert "certificate verify failed" in str(error)
    assert str(error).startswith("remote API server https://127.0.0.2:6443: ConnectError")
    assert transport_reason(httpx.ConnectError("refused")) == "ConnectError: refused"


def test_disable_compression_is_read_from_the_current_contexts_cluster(tmp_path: Path) -> None:
    assert load_kubeconfig(_kubeconfig(tmp_path)).compression is True
    path = _kubeconfig(tmp_path, **{"disable-compression": True})  # type: ignore[arg-type]
    assert load_kubeconfig(path).compression is False


@asynccontextmanager
async def _recording_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """Plain HTTP; answers every request with ``{}`` and keeps its head."""
    heads: list[bytes] = []

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(65536)
            heads.append(data.lower())
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1], heads
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("compression", [True, False])
async def test_accept_encoding_follows_the_kubeconfig(compression: bool) -> None:
    async with _recording_server() as (port, heads):
        conf = ClusterConfig(
            server=f"http://127.0.0.1:{port}", ssl_context=ssl.create_default_context(),
            token=lambda: None, source="test", compression=compression,
        )  # fmt: skip
        client = KubeClient(conf, name="test")
        try:
            await client.get("/api/v1/pods")
            async with client.stream("/api/v1/pods", {"watch": "1"}) as resp:
                await resp.aread()
        finally:
            await client.aclose()
    expected = b"accept-encoding: gzip\r\n" if compression else b"accept-encoding: identity\r\n"
    assert len(heads) == 2 and all(expected in h for h in heads), heads


def test_a_directory_is_not_reported_as_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_kubeconfig(str(tmp_path))
    assert str(raised.value) == f"kubeconfig {tmp_path}: is a directory, not a file"


def test_a_missing_kubeconfig_is_no_such_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_kubeconfig(str(tmp_path / "nope.yaml"))
    assert str(raised.value) == f"kubeconfig {tmp_path}/nope.yaml: no such file"


def test_a_path_through_a_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as raised:
        load_kubeconfig(str(tmp_path / "file" / "kubeconfig"))
    assert str(raised.value) == f"kubeconfig {tmp_path}/file/kubeconfig: not a directory"


def test_a_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as raised:
        load_kubeconfig(str(fifo))
    assert str(raised.value) == f"kubeconfig {fifo}: not a regular file"
