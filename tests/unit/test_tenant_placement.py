"""A pod's own remote placement (actual.vk/remote-placement), within the operator's allow-list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ak.config import load_config
from ak.core.errors import TranslationError
from ak.core.placement import Allowed, Placement
from ak.core.pods import remote_pod_patch, to_remote_pod
from ak.core.tenant_placement import ANNOTATION, REASON_INVALID, REASON_REFUSED
from ak.core.types import Obj
from tests.unit.fixtures import NODE, REMOTE_NAMESPACE, deployment_pod

OPERATOR = Placement(
    {"pool": "tenants"},
    ({"key": "tenants", "operator": "Exists", "effect": "NoSchedule"},),
    "gvisor",
    Allowed(
        node_labels={"gpu.example.com/model": ("a100", "h100"), "zone": (), "pool": ()},
        tolerations={"nvidia.com/gpu": (), "spot": ("true",)},
    ),
)


def _remote_spec(request: Any, placement: Placement = OPERATOR) -> Obj:
    local = deployment_pod()
    local["metadata"].setdefault("annotations", {})[ANNOTATION] = (
        request if isinstance(request, str) else json.dumps(request)
    )
    spec: Obj = to_remote_pod(
        local, node_name=NODE, remote_namespace=REMOTE_NAMESPACE, extra_env=[], placement=placement
    )["spec"]
    return spec


def _refused(request: Any, placement: Placement = OPERATOR) -> TranslationError:
    with pytest.raises(TranslationError) as info:
        _remote_spec(request, placement)
    return info.value


GPU_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "gpu.example.com/model", "operator": "In", "values": ["a100"]}
                    ]
                }
            ]
        },
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 1,
                "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]},
            }
        ],
    }
}
SPREAD = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]


def test_an_allowed_request_is_added_and_the_operator_placement_kept() -> None:
    spec = _remote_spec(
        {
            "nodeSelector": {"gpu.example.com/model": "h100", "pool": "tenants"},
            "affinity": GPU_AFFINITY,
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "topologySpreadConstraints": SPREAD,
        }
    )
    assert spec["nodeSelector"] == {"gpu.example.com/model": "h100", "pool": "tenants"}
    assert spec["affinity"] == GPU_AFFINITY
    assert spec["tolerations"] == [
        {"key": "tenants", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert spec["topologySpreadConstraints"] == SPREAD
    assert spec["runtimeClassName"] == "gvisor"


def test_without_the_annotation_only_the_operator_placement() -> None:
    local = deployment_pod()
    spec = to_remote_pod(
        local, node_name=NODE, remote_namespace=REMOTE_NAMESPACE, extra_env=[], placement=OPERATOR
    )["spec"]
    assert spec["nodeSelector"] == {"pool": "tenants"}
    assert "affinity" not in spec


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"nodeSelector": {"rack": "r1"}}, "nodeSelector targets node label 'rack'"),
        (
            {"nodeSelector": {"gpu.example.com/model": "t4"}},
            "nodeSelector targets gpu.example.com/model='t4'",
        ),
        # The operator's own selector always wins: a tenant cannot move the pod off its pool.
        ({"nodeSelector": {"pool": "infra"}}, "contradicts the operator's pool='tenants'"),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "gpu.example.com/model", "operator": "Exists"}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            "matches any value of node label 'gpu.example.com/model'",
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchFields": [
                                        {"key": "metadata.name", "operator": "In", "values": ["n1"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            "uses matchFields",
        ),
        ({"affinity": {"podAntiAffinity": {}}}, "affinity.podAntiAffinity is not supported"),
        (
            {"tolerations": [{"key": "dedicated", "operator": "Exists"}]},
            "tolerates taint 'dedicated', which the operator does not allow",
        ),
        ({"tolerations": [{"operator": "Exists"}]}, "tolerates every taint"),
        (
            {"tolerations": [{"key": "spot", "operator": "Exists"}]},
            "the operator allows only 'true'",
        ),
        (
            {
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "DoNotSchedule",
                    }
                ]
            },
            "spreads over node label 'kubernetes.io/hostname'",
        ),
    ],
)
def test_a_request_outside_the_allow_list_is_refused(request_: Obj, message: str) -> None:
    error = _refused(request_)
    assert error.reason == REASON_REFUSED
    assert message in error.message
    assert ANNOTATION in error.message


def test_an_allowed_toleration_value_passes() -> None:
    spec = _remote_spec({"tolerations": [{"key": "spot", "value": "true", "effect": "NoSchedule"}]})
    assert spec["tolerations"][-1] == {
        "key": "spot",
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    }


def test_without_an_allow_list_every_request_is_refused() -> None:
    error = _refused({"nodeSelector": {"zone": "a"}}, Placement({}))
    assert error.reason == REASON_REFUSED
    assert "'zone', which the operator does not allow" in error.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1]", "must be a JSON object"),
        ('{"nodeName": "n1"}', "unknown field 'nodeName'"),
        ('{"tolerations": [{"key": "spot", "operator": "Maybe"}]}', "toleration 1: operator"),
        ('{"nodeSelector": {"zone": 3}}', "is not a valid label"),
    ],
)
def test_a_malformed_request_is_refused_as_invalid(text: str, message: str) -> None:
    error = _refused(text)
    assert error.reason == REASON_INVALID
    assert message in error.message


def test_the_allow_list_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "ak.toml"
    path.write_text(
        'node-name = "n"\n[pods.placement.allowed]\n'
        'nodeLabels = { "gpu.example.com/model" = ["a100"], zone = [] }\n'
        'tolerations = { "nvidia.com/gpu" = [] }\n'
    )
    pods = load_config({"config": str(path)}, {}).pods
    assert pods.allowed_node_labels == {"gpu.example.com/model": ("a100",), "zone": ()}
    assert pods.allowed_tolerations == {"nvidia.com/gpu": ()}


def test_a_bad_allow_list_names_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "ak.toml"
    path.write_text('node-name = "n"\n[pods.placement.allowed]\nnodeLabels = { zone = "a" }\n')
    with pytest.raises(Exception, match=r"zone.*not a list of label values"):
        load_config({"config": str(path)}, {})


def test_updates_leave_the_request_out_so_a_changed_allow_list_stops_nothing() -> None:
    local = deployment_pod()
    local["metadata"].setdefault("annotations", {})[ANNOTATION] = json.dumps(
        {"nodeSelector": {"gpu.example.com/model": "a100"}}
    )
    made = to_remote_pod(
        local, node_name=NODE, remote_namespace=REMOTE_NAMESPACE, extra_env=[], placement=OPERATOR
    )
    # The operator narrowed the allow-list and restarted AK; the tenant relabels the pod.
    narrowed = Placement({"pool": "tenants"})
    local["metadata"]["labels"]["release"] = "2"
    with pytest.raises(TranslationError):
        to_remote_pod(
            local,
            node_name=NODE,
            remote_namespace=REMOTE_NAMESPACE,
            extra_env=[],
            placement=narrowed,
        )
    desired = to_remote_pod(
        local,
        node_name=NODE,
        remote_namespace=REMOTE_NAMESPACE,
        extra_env=[],
        placement=narrowed,
        requested_placement=False,
    )
    patch = remote_pod_patch(local, made, desired)
    assert patch is not None and patch["metadata"]["labels"] == {"release": "2"}
