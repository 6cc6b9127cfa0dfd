"""Kubelet API settings: flags, environment, file, and the cert/key pairing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ak.config import KubeletSettings, load_config
from ak.errors import ConfigError


def test_defaults_request_a_certificate() -> None:
    assert load_config({"node_name": "n"}, {}).kubelet == KubeletSettings()


def test_every_source(tmp_path: Path) -> None:
    path = tmp_path / "ak.toml"
    path.write_text(
        'node-name = "n"\n[kubelet]\ntlsCertFile = "f.crt"\ntls-private-key-file = "f.key"\n'
        'client_ca_file = "ca.crt"\ncertDir = "/var/lib/ak"\n'
    )
    from_file = load_config({"config": str(path)}, {}).kubelet
    assert from_file == KubeletSettings("f.crt", "f.key", "ca.crt", "/var/lib/ak")
    env = {"AK_TLS_CERT_FILE": "e.crt", "AK_TLS_PRIVATE_KEY_FILE": "e.key", "AK_CERT_DIR": ""}
    from_env = load_config({"config": str(path)}, env)
    assert from_env.kubelet == KubeletSettings("e.crt", "e.key", "ca.crt", "/var/lib/ak")
    assert from_env.source["kubelet.tls_cert_file"] == "env AK_TLS_CERT_FILE"
    flags = {"config": str(path), "client_ca_file": "flag.crt", "cert_dir": ""}
    from_flags = load_config(flags, env).kubelet
    assert from_flags == KubeletSettings("e.crt", "e.key", "flag.crt", None)


def test_cert_without_key_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"node_name": "n", "tls_cert_file": "x.crt"}, {})
    assert str(info.value).startswith("flag --tls-cert-file: ")
    with pytest.raises(ConfigError, match="AK_TLS_PRIVATE_KEY_FILE"):
        load_config({"node_name": "n"}, {"AK_TLS_PRIVATE_KEY_FILE": "x.key"})


def test_unknown_kubelet_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ak.toml"
    path.write_text('node-name = "n"\n[kubelet]\ntlsCert = "x"\n')
    with pytest.raises(ConfigError, match=r"\[kubelet\]: unknown key 'tlsCert'"):
        load_config({"config": str(path)}, {})
