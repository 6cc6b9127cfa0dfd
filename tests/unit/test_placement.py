"""[pods.placement]: the operator's node selector, tolerations and runtime class."""

from __future__ import annotations

from pathlib import Path

import pytest

from ak.config import load_config
from ak.core.placement import Placement, toleration
from ak.core.pods import to_remote_pod
from ak.errors import ConfigError
from tests.unit.fixtures import NODE, REMOTE_NAMESPACE, deployment_pod


def test_placement_replaces_the_local_scheduling_fields() -> None:
    local = deployment_pod()
    local["spec"]["nodeSelector"] = {"kubernetes.io/hostname": NODE}
    local["spec"]["tolerations"] = [{"key": "local-only", "operator": "Exists"}]
    local["spec"]["runtimeClassName"] = "local-runtime"
    placement = Placement(
        {"pool": "tenants"},
        ({"key": "tenants", "operator": "Exists", "effect": "NoSchedule"},),
        "gvisor",
    )
    spec = to_remote_pod(
        local,
        node_name=NODE,
        remote_namespace=REMOTE_NAMESPACE,
        extra_env=[],
        placement=placement,
    )["spec"]
    assert spec["nodeSelector"] == {"pool": "tenants"}
    assert spec["tolerations"] == [{"key": "tenants", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["runtimeClassName"] == "gvisor"
    # The placement's own objects are not shared with the pod.
    spec["nodeSelector"]["x"] = "y"
    assert placement.node_selector == {"pool": "tenants"}


def test_no_placement_means_no_scheduling_fields() -> None:
    local = deployment_pod()
    local["spec"]["nodeSelector"] = {"kubernetes.io/hostname": NODE}
    spec = to_remote_pod(local, node_name=NODE, remote_namespace=REMOTE_NAMESPACE, extra_env=[])[
        "spec"
    ]
    assert not {"nodeSelector", "tolerations", "runtimeClassName"} & spec.keys()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"key": "a", "operator": "Maybe"}, "operator 'Maybe' is not Equal or Exists"),
        ({"key": "a", "operator": "Exists", "value": "v"}, "value must be empty"),
        ({"operator": "Equal", "value": "v"}, "an empty key needs operator Exists"),
        ({"key": "a", "effect": "NoRun"}, "effect 'NoRun' is not"),
        ({"key": "a", "tolerationSeconds": 5}, "tolerationSeconds needs effect NoExecute"),
        ({"key": "a", "color": "red"}, "unknown key 'color'"),
        ({"key": "not a key!"}, "is not a valid label key"),
        ("a", "expected a table"),
    ],
)
def test_bad_tolerations_are_refused(item: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        toleration(item)


def test_toleration_defaults_to_equal() -> None:
    assert toleration({"key": "a", "value": "b"}) == {"key": "a", "operator": "Equal", "value": "b"}
    assert toleration(
        {"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
    ) == {"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}


def test_placement_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "ak.toml"
    path.write_text(
        'node-name = "n"\n[pods.placement]\nnodeSelector = { pool = "a" }\n'
        'tolerations = [{ key = "t", operator = "Exists" }]\nruntimeClassName = "kata"\n'
    )
    pods = load_config({"config": str(path)}, {}).pods
    assert pods.node_selector == {"pool": "a"}
    assert pods.tolerations == ({"key": "t", "operator": "Exists"},)
    assert pods.runtime_class_name == "kata"
    flag = load_config({"config": str(path), "remote_runtime_class": "runc"}, {})
    assert flag.pods.runtime_class_name == "runc"


def test_a_bad_toleration_in_the_file_names_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "ak.toml"
    path.write_text('node-name = "n"\n[pods.placement]\ntolerations = [{ key = "t" }, 3]\n')
    with pytest.raises(ConfigError) as info:
        load_config({"config": str(path)}, {})
    assert str(info.value) == (
        f"config {path}: [pods.placement.tolerations] entry 2: "
        "expected a table with key, operator, value, effect"
    )
