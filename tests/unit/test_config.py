"""Settings: precedence per field, the seed-style file, and one-line errors."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import ak.config
from ak.config import (
    SETTINGS,
    Config,
    LocalSettings,
    NodeSettings,
    PodSettings,
    RemoteSettings,
    is_quantity,
    load_config,
    precedence_doc,
)
from ak.errors import ConfigError

SEED_TOML = """\
node-name = "vk-ak-example"
[local]
kubeconfig = "/etc/ak/local.yaml"
context = "local-ctx"
apiserverHost = "10.0.0.1"
apiserverPort = 6443
qps = 25
burst = 40
[remote]
kubeconfig = "/etc/ak/remote.yaml"
[pods]
env = { HTTP_PROXY = "http://proxy:3128", NO_PROXY = "10.0.0.0/8" }
workers = 4
[node]
taint = true
internalIP = "10.1.2.3"
kubeletPort = 10251
labels = { "example.com/team" = "a" }
[node.resources.allocatable]
cpu = "64"
memory = "256Gi"
pods = 500
"""


def write(tmp_path: Path, text: str, name: str = "ak.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def error_of(args: dict[str, object], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(args, environ or {})
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_need_only_a_node_name() -> None:
    config = load_config({"node_name": "vk"}, {})
    assert config == Config(node=NodeSettings(name="vk"))
    assert config.local == LocalSettings(None, None, 50.0, 100, None, 443)
    assert config.remote == RemoteSettings(None, None, 100.0, 200)
    assert config.pods == PodSettings(env=(), workers=16)
    assert config.node.capacity == {"cpu": "100", "memory": "512Gi", "pods": "1000"}
    assert config.node.allocatable == config.node.capacity
    assert (config.node.taint, config.node.kubelet_port, config.node.internal_ip) == (
        False,
        10250,
        None,
    )
    assert (config.metrics_port, config.log_level, config.log_format) == (10256, "info", "text")
    assert config.source["node.name"] == "flag --node-name"
    assert config.source["local.qps"] == "default"


def test_seed_style_file(tmp_path: Path) -> None:
    path = write(tmp_path, SEED_TOML)
    config = load_config({"config": path}, {})
    assert config.node == NodeSettings(
        name="vk-ak-example",
        labels={"example.com/team": "a"},
        taint=True,
        internal_ip="10.1.2.3",
        kubelet_port=10251,
        capacity={"cpu": "64", "memory": "256Gi", "pods": "500"},
        allocatable={"cpu": "64", "memory": "256Gi", "pods": "500"},
    )
    assert config.local == LocalSettings(
        "/etc/ak/local.yaml", "local-ctx", 25.0, 40, "10.0.0.1", 6443
    )
    assert config.remote == RemoteSettings("/etc/ak/remote.yaml", None, 100.0, 200)
    assert config.pods.env == (("HTTP_PROXY", "http://proxy:3128"), ("NO_PROXY", "10.0.0.0/8"))
    assert config.pods.workers == 4
    assert config.source["local.apiserver_host"] == f"file {path} [local] apiserverHost"
    assert config.source["node.name"] == f"file {path} node-name"


def test_file_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nname = "from-file"\n')
    assert load_config({}, {"AK_CONFIG": path}).node.name == "from-file"


def test_snake_and_kebab_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'metrics-port = 0\nlog_level = "DEBUG"\n[node]\nname = "n"\ninternal_ip = "::1"\n'
        '[local]\napiserver_host = "api.example.com"\n',
    )
    config = load_config({"config": path}, {})
    assert (config.metrics_port, config.log_level) == (0, "debug")
    assert config.node.internal_ip == "::1"
    assert config.local.apiserver_host == "api.example.com"


def test_env_list_form(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'node-name = "n"\n[pods]\nenv = [{name = "B", value = "2"}, {name = "A", value = "1"}]\n',
    )
    assert load_config({"config": path}, {}).pods.env == (("B", "2"), ("A", "1"))


def test_capacity_alone_sets_allocatable_and_merges_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "n"\n[node.resources.capacity]\ncpu = "8"\n')
    node = load_config({"config": path}, {}).node
    assert node.capacity == {"cpu": "8", "memory": "512Gi", "pods": "1000"}
    assert node.allocatable == node.capacity


# One field at a time, each layer changing the value: default, then the file,
# then the variable over the file, then the flag over both.
# (flag dest, variable, file text, path in Config, default, file value,
#  variable text, its value, flag value as argparse gives it, its value)
PRECEDENCE = [
    ("kubelet_port", "AK_KUBELET_PORT", "[node]\nkubeletPort = 1", "node.kubelet_port",
     10250, 1, "2", 2, "3", 3),
    ("taint", "AK_TAINT", "[node]\ntaint = true", "node.taint", False, True, "false", False,
     True, True),
    ("internal_ip", "AK_INTERNAL_IP", '[node]\ninternalIP = "10.0.0.1"', "node.internal_ip",
     None, "10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.3"),
    ("local_kubeconfig", "AK_LOCAL_KUBECONFIG", '[local]\nkubeconfig = "f"',
     "local.kubeconfig", None, "f", "e", "e", "x", "x"),
    ("local_context", "AK_LOCAL_CONTEXT", '[local]\ncontext = "f"', "local.context", None, "f",
     "e", "e", "x", "x"),
    ("local_apiserver_host", "AK_LOCAL_APISERVER_HOST", '[local]\napiserverHost = "f"',
     "local.apiserver_host", None, "f", "e", "e", "x", "x"),
    ("local_apiserver_port", "AK_LOCAL_APISERVER_PORT", "[local]\napiserverPort = 1",
     "local.apiserver_port", 443, 1, "2", 2, "3", 3),
    ("local_qps", "AK_LOCAL_QPS", "[local]\nqps = 1", "local.qps", 50.0, 1.0, "2.5", 2.5, "0", 0.0),
    ("remote_kubeconfig", "AK_REMOTE_KUBECONFIG", '[remote]\nkubeconfig = "f"',
     "remote.kubeconfig", None, "f", "e", "e", "x", "x"),
    ("remote_context", "AK_REMOTE_CONTEXT", '[remote]\ncontext = "f"', "remote.context", None,
     "f", "e", "e", "x", "x"),
    ("remote_burst", "AK_REMOTE_BURST", "[remote]\nburst = 1", "remote.burst", 200, 1, "2", 2,
     "3", 3),
    ("pod_workers", "AK_POD_WORKERS", "[pods]\nworkers = 1", "pods.workers", 16, 1, "2", 2, "3",
     3),
    ("token_max_age", "AK_TOKEN_MAX_AGE", "[pods]\ntokenMaxAge = 3600", "pods.token_max_age",
     86400, 3600, "60", 60, "10", 10),
    ("metrics_port", "AK_METRICS_PORT", "metrics_port = 1", "metrics_port", 10256, 1, "0", 0,
     "3", 3),
    ("log_level", "AK_LOG_LEVEL", 'log-level = "debug"', "log_level", "info", "debug", "WARN",
     "warning", "error", "error"),
    ("log_format", "AK_LOG_FORMAT", 'logFormat = "json"', "log_format", "text", "json", "text",
     "text", "json", "json"),
]  # fmt: skip


def get(config: Config, path: str) -> object:
    value: object = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("case", PRECEDENCE, ids=[c[0] for c in PRECEDENCE])
def test_precedence(tmp_path: Path, case: tuple[object, ...]) -> None:
    dest, env, toml, path, default, file_value, env_text, env_value, flag, flag_value = case
    assert isinstance(dest, str) and isinstance(env, str) and isinstance(path, str)
    config_file = write(tmp_path, f'node-name = "n"\n{toml}\n')
    environ = {env: str(env_text)}
    layers: list[tuple[dict[str, object], dict[str, str]]] = [
        ({"node_name": "n"}, {}),
        ({"config": config_file}, {}),
        ({"config": config_file}, environ),
        ({"config": config_file, dest: flag}, environ),
    ]
    got = [get(load_config(args, env_), path) for args, env_ in layers]
    assert got == [default, file_value, env_value, flag_value]
    # 1 == 1.0 and True == 1: the types must match too (qps is a float, ports ints).
    assert [type(v) for v in got] == [type(v) for v in (default, file_value, env_value, flag_value)]


def test_node_name_precedence(tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nname = "file"\n')
    assert load_config({"config": path}, {}).node.name == "file"
    assert load_config({"config": path}, {"AK_NODE_NAME": "env"}).node.name == "env"
    both = load_config({"config": path, "node_name": "flag"}, {"AK_NODE_NAME": "env"})
    assert both.node.name == "flag"
    assert both.source["node.name"] == "flag --node-name"


def test_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "n"\n[node]\nkubeletPort = 1234\n')
    assert load_config({"config": path}, {"AK_KUBELET_PORT": ""}).node.kubelet_port == 1234


def test_empty_kubeconfig_flag_means_in_cluster(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "n"\n[local]\nkubeconfig = "/k"\n')
    assert load_config({"config": path, "local_kubeconfig": ""}, {}).local.kubeconfig is None


def test_namespace_from_argparse_is_accepted() -> None:
    args = argparse.Namespace(command="run", node_name="vk", kubelet_port="1", taint=None)
    config = load_config(args, {})
    assert (config.node.name, config.node.kubelet_port, config.node.taint) == ("vk", 1, False)


def test_unknown_argument_is_a_caller_bug() -> None:
    with pytest.raises(TypeError, match="node_nmae"):
        load_config({"node_nmae": "vk"}, {})


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "n"\n[local]\nkubconfig = "/x"\n')
    assert error_of({"config": path}) == (
        f"config {path}: [local]: unknown key 'kubconfig' (did you mean 'kubeconfig'?)"
    )


def test_unknown_top_level_key_and_section(tmp_path: Path) -> None:
    path = write(tmp_path, 'nodeName = "n"\n[nodes]\nname = "x"\n')
    assert (
        error_of({"config": path})
        == f"config {path}: top level: unknown key 'nodes' (did you mean 'node'?)"
    )


def test_remote_apiserver_settings_point_to_kubeconfig(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "n"\n[remote]\napiserverHost = "1.2.3.4"\n')
    message = error_of({"config": path})
    assert message.startswith(f"config {path}: [remote]: unknown key 'apiserverHost'")
    assert "[remote] kubeconfig" in message


def test_key_set_twice(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "a"\n[node]\nname = "b"\n')
    assert (
        error_of({"config": path}) == f"config {path}: [node] name: set twice (also as node-name)"
    )


def test_bad_quantity(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "n"\n[node.resources.allocatable]\ncpu = "lots"\n')
    assert error_of({"config": path}) == (
        f'config {path}: [node.resources.allocatable] cpu: "lots" is not a Kubernetes quantity'
    )


@pytest.mark.parametrize("good", ["100", "0.5", "100m", "512Gi", "1e3", "2k", ".5", "1E-2", "+3Mi"])
def test_quantities_accepted(good: str) -> None:
    assert is_quantity(good)


@pytest.mark.parametrize(
    "bad", ["", "lots", "-1", "1.2.3", "1Ki ", "1KiB", "5B", "1e", "1 Gi", "Gi"]
)
def test_quantities_refused(bad: str) -> None:
    assert not is_quantity(bad)


def test_bad_port_variable_is_named() -> None:
    assert error_of({"node_name": "n"}, {"AK_KUBELET_PORT": "abc"}) == (
        'AK_KUBELET_PORT: "abc" is not a port number (1-65535)'
    )


def test_bad_port_flag_is_named() -> None:
    assert error_of({"node_name": "n", "kubelet_port": "70000"}) == (
        '--kubelet-port: "70000" is not a port number (1-65535)'
    )


def test_port_out_of_range_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "n"\n[local]\napiserverPort = 0\n')
    assert error_of({"config": path}) == (
        f"config {path}: [local] apiserverPort: 0 is not a port number (1-65535)"
    )


@pytest.mark.parametrize("value", ["9", "86401", "1h"])
def test_token_max_age_range(value: str) -> None:
    assert error_of({"node_name": "n", "token_max_age": value}) == (
        f'--token-max-age: "{value}" is not a number of seconds (10-86400)'
    )


def test_metrics_port_zero_disables_but_negative_is_refused() -> None:
    assert load_config({"node_name": "n", "metrics_port": "0"}, {}).metrics_port == 0
    assert "AK_METRICS_PORT" in error_of({"node_name": "n"}, {"AK_METRICS_PORT": "-1"})


def test_bad_boolean_variable() -> None:
    assert error_of({"node_name": "n"}, {"AK_TAINT": "maybe"}) == (
        'AK_TAINT: "maybe" is not a boolean (true or false)'
    )
    assert load_config({"node_name": "n"}, {"AK_TAINT": "Yes"}).node.taint is True


def test_wrong_type_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "n"\n[remote]\nqps = "fast"\n')
    assert error_of({"config": path}) == (
        f'config {path}: [remote] qps: "fast" is not a rate (a number >= 0, 0 = unlimited)'
    )


def test_bad_ip_and_host() -> None:
    assert error_of({"node_name": "n", "internal_ip": "10.0.0"}) == (
        '--internal-ip: "10.0.0" is not an IP address'
    )
    message = error_of({"node_name": "n"}, {"AK_LOCAL_APISERVER_HOST": "https://10.0.0.1"})
    assert message.startswith('AK_LOCAL_APISERVER_HOST: "https://10.0.0.1" is not a host name')


def test_bad_log_level() -> None:
    assert error_of({"node_name": "n", "log_level": "loud"}) == (
        '--log-level: "loud" is not one of debug, info, warning, error'
    )


def test_bad_label_and_env_entries(tmp_path: Path) -> None:
    labels = write(tmp_path, 'node-name = "n"\n[node.labels]\n"a/b/c" = "x"\n', "l.toml")
    assert error_of({"config": labels}) == (
        f"config {labels}: [node.labels] a/b/c: is not a valid label key"
    )
    env = write(tmp_path, 'node-name = "n"\n[pods]\nenv = [{ name = "A", valu = "1" }]\n', "e.toml")
    assert error_of({"config": env}) == f'config {env}: [pods.env] entry 1: unknown key "valu"'
    twice = write(
        tmp_path, 'node-name = "n"\n[pods]\nenv = [{name="A", value="1"}, {name="A"}]\n', "t.toml"
    )
    assert error_of({"config": twice}) == f"config {twice}: [pods.env] A: is set twice"


def test_missing_node_name() -> None:
    assert error_of({}) == (
        "no node name: pass --node-name, set AK_NODE_NAME or node-name in the config file"
    )


@pytest.mark.parametrize("name", ["VK", "-vk", "vk-", "vk_1", "a" * 254, "vk..x"])
def test_invalid_node_name(name: str) -> None:
    message = error_of({}, {"AK_NODE_NAME": name})
    assert message.startswith(f'AK_NODE_NAME: "{name}" is not a valid node name (a DNS subdomain')


def test_long_dotted_node_name_is_valid() -> None:
    name = ".".join(["a" * 63] * 4)[:253]
    assert load_config({"node_name": name}, {}).node.name == name


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert error_of({"config": str(missing)}) == (
        f"config {missing}: cannot read: No such file or directory"
    )


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'node-name = "n"\n[local]\nqps = = 3\n')
    message = error_of({"config": path})
    assert re.fullmatch(rf"config {re.escape(path)}: line 3, column \d+: .+", message), message


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b'node-name = "\xff"\n')
    assert error_of({"config": str(path)}).startswith(f"config {path}: not UTF-8 text")


def test_precedence_is_documented() -> None:
    doc = precedence_doc()
    module_doc = ak.config.__doc__ or ""
    for s in SETTINGS:
        if s.env:
            assert s.env in doc
            assert s.env in module_doc, f"{s.env} missing from the module docstring"
    assert "AK_CONFIG" in doc
    assert "AK_CONFIG" in module_doc
    assert doc.index("flag") < doc.index("environment") < doc.index("TOML") < doc.index("default")


def test_config_is_frozen() -> None:
    config = load_config({"node_name": "vk"}, {})
    with pytest.raises(AttributeError):
        config.node.name = "other"  # type: ignore[misc]


def test_node_labels_a_node_may_not_set_are_refused_at_load(tmp_path: Path) -> None:
    f = tmp_path / "ak.toml"
    f.write_text('node-name = "n"\n[node]\nlabels = { "node-role.kubernetes.io/master" = "" }\n')
    with pytest.raises(ConfigError, match=re.escape("node-role.kubernetes.io/master")):
        load_config({"config": str(f)}, {})
    f.write_text('node-name = "n"\n[node]\nlabels = { "kubernetes.io/arch" = "arm64" }\n')
    assert load_config({"config": str(f)}, {}).node.labels == {"kubernetes.io/arch": "arm64"}


def test_isolation_is_on_by_default_and_takes_peers(tmp_path: Path) -> None:
    config = load_config({"node_name": "n"}, {})
    assert config.namespaces.isolation is True
    assert config.namespaces.isolation_peers == ()
    assert config.pods.network_policies is True
    path = write(
        tmp_path,
        'node-name = "n"\n'
        "[namespaces.isolation]\n"
        "enabled = false\n"
        'ingressFrom = [{ namespaceSelector = { matchLabels = { team = "ingress" } } },\n'
        '  { ipBlock = { cidr = "192.0.2.0/24", except = ["192.0.2.0/28"] } },\n'
        '  { namespaceSelector = { matchExpressions = [{ key = "x", operator = "Exists" }] }, '
        'podSelector = { matchLabels = { app = "prom" } } }]\n'
        "[pods]\nnetworkPolicies = false\n",
    )
    config = load_config({"config": path}, {})
    assert config.namespaces.isolation is False
    assert config.pods.network_policies is False
    assert config.namespaces.isolation_peers == (
        {"namespaceSelector": {"matchLabels": {"team": "ingress"}}},
        {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.0/28"]}},
        {
            "namespaceSelector": {"matchExpressions": [{"key": "x", "operator": "Exists"}]},
            "podSelector": {"matchLabels": {"app": "prom"}},
        },
    )
    assert (
        load_config({"node_name": "n"}, {"AK_NAMESPACE_ISOLATION": "false"}).namespaces.isolation
        is False
    )


@pytest.mark.parametrize(
    "peers",
    [
        '[{ namespaceSelector = { matchLabels = { team = "a b" } } }]',
        '[{ podSelector = { matchExpressions = [{ key = "x", operator = "In" }] } }]',
        '[{ ipBlock = { cidr = "not-a-cidr" } }]',
        '[{ ipBlock = { cidr = "10.0.0.0/8" }, podSelector = {} }]',
        "[{ serviceSelector = {} }]",
        "[{}]",
        '"everyone"',
    ],
)
def test_bad_isolation_peers_are_refused(tmp_path: Path, peers: str) -> None:
    path = write(tmp_path, f'node-name = "n"\n[namespaces.isolation]\ningressFrom = {peers}\n')
    assert "[namespaces.isolation" in error_of({"config": path})


def test_readme_isolation_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("[namespaces.isolation]\nenabled = true")
    example = readme[start : readme.index("```", start)]
    config = load_config({"config": write(tmp_path, 'node-name = "n"\n' + example)}, {})
    assert config.namespaces.isolation is True
    assert len(config.namespaces.isolation_peers) == 2
    assert config.namespaces.isolation_dns[0]["podSelector"] == {
        "matchLabels": {"k8s-app": "kube-dns"}
    }
