"""Kubeconfig fields that change where and how AK connects, and what it says when it cannot."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trio
import yaml

from ak.errors import ConfigError
from ak.kube.config import load_kubeconfig
from ak.kube.errors import Unreachable, transport_reason
from ak.testbed.pki import CertificateAuthority


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
