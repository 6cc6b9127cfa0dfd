"""In-cluster config: the service-account token AK sends is the token, nothing else.

The kubernetes package's in-cluster loader stores it as "bearer <token>" (lower
case); AK stripped only "Bearer ", so AK run as a pod (the Helm chart's
default) sent "Bearer bearer <token>" and every local request was 401. Found
running the chart on a real node."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.config.incluster_config import InClusterConfigLoader

from ak.kube.config import _configuration, _token_source


def test_incluster_token_is_sent_bare(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("eyJhbGciOi.payload.sig\n")
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    conf = _configuration()
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    InClusterConfigLoader(str(token), str(ca), environ=env).load_and_set(conf)
    assert _token_source(conf)() == "eyJhbGciOi.payload.sig"
    # The file is re-read when the kubelet rotates it.
    token.write_text("rotated.token.value")
    conf.refresh_api_key_hook = None  # what the loader's hook would do, done by hand:
    InClusterConfigLoader(str(token), str(ca), environ=env).load_and_set(conf)
    assert _token_source(conf)() == "rotated.token.value"


@pytest.mark.parametrize(
    ("stored", "sent"),
    [("abc", "abc"), ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc")],
)
def test_token_scheme_is_stripped_in_any_case(stored: str, sent: str) -> None:
    conf = _configuration()
    conf.api_key = {"authorization": stored}
    assert _token_source(conf)() == sent
