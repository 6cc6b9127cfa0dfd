"""The node's capacity never exceeds what the remote ResourceQuotas still allow."""

from __future__ import annotations

from decimal import Decimal

from ak.core.quota_capacity import capped, node_resource, quota_limits
from ak.core.types import Obj


def _quota(hard: dict[str, str], used: dict[str, str]) -> Obj:
    return {"spec": {"hard": hard}, "status": {"hard": hard, "used": used}}


def test_quota_keys_map_to_node_resources() -> None:
    assert node_resource("requests.cpu") == "cpu"
    assert node_resource("memory") == "memory"
    assert node_resource("pods") == "pods"
    assert node_resource("requests.example.com/gpu") == "example.com/gpu"
    assert node_resource("limits.cpu") is None
    assert node_resource("count/services") is None


def test_no_namespace_yet_the_template_quota_is_the_limit() -> None:
    assert quota_limits([], {"pods": "5", "requests.cpu": "2"}) == {
        "pods": Decimal(5),
        "cpu": Decimal(2),
    }


def test_the_least_headroom_of_any_namespace_plus_what_is_used() -> None:
    quotas = [
        _quota({"pods": "5", "requests.cpu": "4"}, {"pods": "4", "requests.cpu": "1"}),
        _quota({"pods": "5", "requests.cpu": "4"}, {"pods": "1", "requests.cpu": "3500m"}),
    ]
    limits = quota_limits(quotas, {"pods": "5", "requests.cpu": "4"})
    # pods: 5 used, least headroom 1 (first namespace); cpu: 4.5 used, least headroom 0.5.
    assert limits == {"pods": Decimal(6), "cpu": Decimal("5.0")}


def test_a_full_namespace_stops_the_node_where_it_is() -> None:
    limits = quota_limits([_quota({"pods": "2"}, {"pods": "2"})], {"pods": "2"})
    assert limits == {"pods": Decimal(2)}
    # Over quota (hard lowered below used): no headroom, never negative.
    limits = quota_limits([_quota({"pods": "1"}, {"pods": "3"})], {"pods": "1"})
    assert limits == {"pods": Decimal(3)}


def test_capped_lowers_only_what_exceeds_and_adds_nothing() -> None:
    resources = {"cpu": "64", "memory": "256Gi", "pods": "110"}
    limits = {"cpu": Decimal("2.5"), "pods": Decimal(500), "example.com/gpu": Decimal(1)}
    assert capped(resources, limits) == {"cpu": "2500m", "memory": "256Gi", "pods": "110"}
