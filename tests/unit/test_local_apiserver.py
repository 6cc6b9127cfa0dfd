"""Where remote pods reach the LOCAL API server, and the environment that says so."""

from __future__ import annotations

import copy

import pytest

from ak.config import load_config
from ak.core.local_apiserver import Endpoint, apiserver_env, local_endpoint, with_apiserver_env
from ak.core.pods import to_remote_pod
from ak.core.types import Obj
from ak.run import token_settings
from tests.unit.fixtures import NODE, REMOTE_NAMESPACE, deployment_pod


def translate(pod: Obj) -> Obj:
    return to_remote_pod(pod, node_name=NODE, remote_namespace=REMOTE_NAMESPACE, extra_env=[])


@pytest.mark.parametrize(
    ("server", "host", "port", "want"),
    [
        ("https://127.0.0.1:6443", None, None, Endpoint("127.0.0.1", 6443)),
        ("https://api.example.com", None, None, Endpoint("api.example.com", 443)),
        ("https://api.example.com:6443", None, 8443, Endpoint("api.example.com", 8443)),
        ("https://[fd00::1]:6443", None, None, Endpoint("fd00::1", 6443)),
        ("https://127.0.0.1:6443", "10.0.0.1", None, Endpoint("10.0.0.1", 443)),
        ("https://127.0.0.1:6443", "10.0.0.1", 6443, Endpoint("10.0.0.1", 6443)),
    ],
)
def test_local_endpoint(server: str, host: str | None, port: int | None, want: Endpoint) -> None:
    assert local_endpoint(server, host, port) == want


def test_local_endpoint_needs_a_host() -> None:
    with pytest.raises(ValueError, match="cannot take an API host"):
        local_endpoint("unix:///run/kube.sock", None, None)


def test_endpoint_from_config() -> None:
    default = load_config({"node_name": "vk"}, {})
    server = "https://10.1.2.3:6443"
    assert token_settings(default, server).endpoint == Endpoint("10.1.2.3", 6443)
    assert token_settings(default, server).max_age == 86400
    hosted = load_config({"node_name": "vk", "local_apiserver_host": "api.example.com"}, {})
    assert token_settings(hosted, server).endpoint == Endpoint("api.example.com", 443)
    port_only = load_config({"node_name": "vk", "local_apiserver_port": "8443"}, {})
    assert token_settings(port_only, server).endpoint == Endpoint("10.1.2.3", 8443)
    aged = load_config({"node_name": "vk"}, {"AK_TOKEN_MAX_AGE": "30"})
    assert token_settings(aged, server).max_age == 30.0


def env_dict(env: list[Obj]) -> dict[str, str]:
    return {var["name"]: var["value"] for var in env}


def test_apiserver_env_on_443() -> None:
    assert env_dict(apiserver_env(Endpoint("10.0.0.1", 443))) == {
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        "KUBERNETES_PORT": "tcp://10.0.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.0.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "10.0.0.1",
    }


def test_apiserver_env_on_another_port_also_overrides_the_443_family() -> None:
    env = env_dict(apiserver_env(Endpoint("fd00::1", 6443)))
    assert env["KUBERNETES_SERVICE_HOST"] == "fd00::1"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert env["KUBERNETES_PORT"] == "tcp://[fd00::1]:6443"
    for family in ("KUBERNETES_PORT_443_TCP", "KUBERNETES_PORT_6443_TCP"):
        assert env[family] == "tcp://[fd00::1]:6443"
        assert env[f"{family}_PORT"] == "6443"
        assert env[f"{family}_ADDR"] == "fd00::1"
        assert env[f"{family}_PROTO"] == "tcp"
    assert len(env) == 12


def test_apiserver_env_in_every_container_user_values_win() -> None:
    local = deployment_pod()
    local["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    local["spec"]["containers"].append(
        {
            "name": "sidecar",
            "image": "proxy",
            "env": [
                {"name": "KUBERNETES_SERVICE_HOST", "value": "localhost"},
                {"name": "URL", "value": "https://$(KUBERNETES_SERVICE_HOST)"},
            ],
        }
    )
    remote = translate(local)
    before = copy.deepcopy(remote)
    result = with_apiserver_env(local, remote, Endpoint("10.0.0.1", 6443))
    assert remote == before
    family = apiserver_env(Endpoint("10.0.0.1", 6443))
    spec = result["spec"]
    assert spec["initContainers"][0]["env"] == family
    assert spec["containers"][0]["env"] == family + before["spec"]["containers"][0]["env"]
    sidecar = spec["containers"][1]["env"]
    assert sidecar[-2:] == local["spec"]["containers"][1]["env"]
    assert [v for v in sidecar if v["name"] == "KUBERNETES_SERVICE_HOST"] == [
        {"name": "KUBERNETES_SERVICE_HOST", "value": "localhost"}
    ]
    assert len(sidecar) == len(family) + 1


@pytest.mark.parametrize(
    ("value", "injected"), [("false", False), (" False ", False), ("true", True), ("no", True)]
)
def test_apiserver_env_opt_out(value: str, injected: bool) -> None:
    local = deployment_pod()
    local["metadata"]["annotations"]["actual.vk/local-apiserver-env"] = value
    remote = translate(local)
    result = with_apiserver_env(local, remote, Endpoint("10.0.0.1", 443))
    names = {v["name"] for v in result["spec"]["containers"][0]["env"]}
    assert ("KUBERNETES_SERVICE_HOST" in names) is injected
    # Opting out of the variables keeps the local token, CA and namespace.
    assert result["spec"]["volumes"] == remote["spec"]["volumes"]
