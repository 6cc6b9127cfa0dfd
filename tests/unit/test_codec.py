"""ak.core.codec: orjson for objects, and the core's copy."""

import copy
import datetime
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ak.core import codec
from tests.unit.fixtures import deployment_pod

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=30,
)


@given(json_values)
def test_clone_of_json_equals_deepcopy(value: object) -> None:
    assert codec.clone(value) == copy.deepcopy(value)


@given(json_values)
def test_round_trip_agrees_with_the_standard_library(value: object) -> None:
    encoded = codec.dumps(value)
    assert codec.loads(encoded) == value
    assert json.loads(encoded) == value
    assert codec.loads(json.dumps(value)) == value


def test_clone_shares_nothing_with_its_input() -> None:
    pod = deployment_pod()
    copied = codec.clone(pod)
    assert copied == pod
    copied["metadata"]["labels"]["app"] = "changed"
    copied["spec"]["volumes"].append({"name": "more"})
    assert pod == deployment_pod()


def test_clone_of_what_json_cannot_carry_is_a_deepcopy() -> None:
    when = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    for value in ({"when": when}, {1: "int key"}, {"s": {1, 2}}, {"b": b"raw"}, {"n": 2**70}):
        copied = codec.clone(value)
        assert copied == value
        assert type(next(iter(copied.values()))) is type(next(iter(value.values())))


def test_clone_returns_the_json_value_of_a_tuple() -> None:
    value: dict[str, object] = {"args": ("a", "b")}
    assert codec.clone(value) == {"args": ["a", "b"]}


def test_loads_raises_a_value_error() -> None:
    with pytest.raises(ValueError):
        codec.loads(b"{not json")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def test_kept_bytes_cost_their_length_in_memory() -> None:
    pod = deployment_pod()
    before = _rss_mb()
    kept = []
    for i in range(20_000):
        pod["metadata"]["name"] = f"pod-{i}"
        kept.append(codec.dumps_compact(pod))
    grown = _rss_mb() - before
    assert codec.loads(kept[-1]) == pod
    # ~3.5 KB each: 70 MB exact, over 200 MB as orjson returns them.
    assert grown < 2 * sum(len(b) for b in kept) / 1e6
