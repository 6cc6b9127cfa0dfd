import pytest
from hypothesis import given
from hypothesis import strategies as st

from ak.core.labels import LABEL_MANAGED_BY, LABEL_NAMESPACE, LABEL_NODE
from ak.core.names import (
    fnv1_64,
    node_label_value,
    node_prefix,
    remote_namespace,
    remote_namespace_object,
)
from ak.core.validation import is_dns_label, is_label_value

# Reference values printed by Go's hash/fnv.New64 (FNV-1), which the seed used.
GO_FNV1_64 = {
    "": 0xCBF29CE484222325,
    "a": 0xAF63BD4C8601B7BE,
    "foobar": 0x340D8765A4DDA9C2,
    "crossplane-system": 0xD05FE343C4951ECB,
    "default": 0xDEAD4915C9C6C0D8,
    "kube-system": 0xC25D1F34DD271D14,
}

_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
node_names = st.lists(_label, min_size=1, max_size=12).map(".".join).filter(lambda n: len(n) <= 253)
namespaces = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)


@pytest.mark.parametrize(("text", "expected"), GO_FNV1_64.items())
def test_fnv1_64_matches_go(text: str, expected: int) -> None:
    assert fnv1_64(text.encode()) == expected


def test_fnv1_is_not_fnv1a() -> None:
    # FNV-1a of "a" is 0xaf63dc4c8601ec8c; a swapped multiply/xor gives that.
    assert fnv1_64(b"a") != 0xAF63DC4C8601EC8C


def test_seed_readme_vector() -> None:
    assert remote_namespace("vk-ak-example", "crossplane-system") == (
        "vk-ak-example-d05fe343c4951ecb"
    )


def test_seed_scheme_does_not_pad_hash() -> None:
    # A hash with leading zero nibbles stays unpadded, like Go's %x.
    ns = next(f"ns{i}" for i in range(100_000) if fnv1_64(f"ns{i}".encode()) < 1 << 60)
    expected_hash = f"{fnv1_64(ns.encode()):x}"
    assert len(expected_hash) < 16
    assert remote_namespace("node", ns) == f"node-{expected_hash}"


def test_dotted_node_name_gets_derived_name() -> None:
    name = remote_namespace("vk.example.com", "default")
    assert name == f"vk-example-com-{_folded('vk.example.com')}-dead4915c9c6c0d8"
    assert is_dns_label(name)


def test_dotted_and_dashed_node_names_differ() -> None:
    assert remote_namespace("a.b", "default") != remote_namespace("a-b", "default")
    # a-b is seed-valid and must keep the seed form
    assert remote_namespace("a-b", "default") == "a-b-dead4915c9c6c0d8"


def test_long_node_name_is_cut_to_63() -> None:
    node = "n" * 100
    name = remote_namespace(node, "kube-system")
    assert len(name) == 63
    assert name == "n" * 37 + f"-{_folded(node)}-c25d1f34dd271d14"


def test_longest_seed_compatible_node_name() -> None:
    # 46 + '-' + 16 hex = 63: still the seed form
    assert remote_namespace("n" * 46, "default") == "n" * 46 + "-dead4915c9c6c0d8"
    assert remote_namespace("n" * 47, "default").startswith("n" * 37 + "-")


def test_long_names_sharing_a_prefix_differ() -> None:
    a = remote_namespace("x" * 60 + "a", "default")
    b = remote_namespace("x" * 60 + "b", "default")
    assert a != b


def test_node_prefix_strips_edges_and_dots() -> None:
    assert node_prefix(".a.b.") == "a-b"
    assert node_prefix("A.B") == "a-b"
    assert node_prefix("." * 10) == ""


def test_name_without_prefix_is_still_valid() -> None:
    name = remote_namespace("...", "x")
    assert is_dns_label(name)
    assert not name.startswith("-")


def _folded(node: str) -> str:
    h = fnv1_64(node.encode())
    return f"{(h >> 32) ^ (h & 0xFFFFFFFF):08x}"


@given(node_names, namespaces)
def test_remote_namespace_is_valid_and_deterministic(node: str, namespace: str) -> None:
    name = remote_namespace(node, namespace)
    assert is_dns_label(name)
    assert name == remote_namespace(node, namespace)


@given(node_names, namespaces)
def test_seed_scheme_kept_whenever_valid(node: str, namespace: str) -> None:
    seed = f"{node}-{fnv1_64(namespace.encode()):x}"
    if is_dns_label(seed):
        assert remote_namespace(node, namespace) == seed


# Names that only differ where the derived scheme throws information away:
# after the 37-character cut, or in '.' versus '-'.
long_node_names = st.builds(lambda tail: "x" * 40 + "." + tail, node_names)


def adversarial_node_names() -> list[str]:
    chars = "abz09.-"
    tails = [a + b for a in chars for b in chars]
    names = [p + t + e for p in ("x" * 60, "x" * 20) for t in tails for e in ("", "y")]
    return names + [n.replace(".", "-") for n in names if "." in n]


@given(st.one_of(node_names, long_node_names), st.one_of(node_names, long_node_names), namespaces)
def test_distinct_nodes_give_distinct_namespaces(a: str, b: str, namespace: str) -> None:
    if a != b:
        assert remote_namespace(a, namespace) != remote_namespace(b, namespace)


@given(node_names, namespaces, namespaces)
def test_distinct_namespaces_give_distinct_names(node: str, ns_a: str, ns_b: str) -> None:
    if ns_a != ns_b:
        assert remote_namespace(node, ns_a) != remote_namespace(node, ns_b)


def test_adversarial_node_names_give_distinct_namespaces() -> None:
    nodes = set(adversarial_node_names())
    names = {remote_namespace(n, "default") for n in nodes}
    assert len(names) == len(nodes)
    assert all(is_dns_label(n) for n in names)


def test_node_label_value_verbatim_when_valid() -> None:
    assert node_label_value("vk-ak-example") == "vk-ak-example"
    assert node_label_value("vk.example.com") == "vk.example.com"


def test_node_label_value_for_long_name() -> None:
    node = "a" * 64
    value = node_label_value(node)
    assert value == "a" * 46 + f"-{fnv1_64(node.encode()):016x}"
    assert len(value) == 63


def test_node_label_value_trims_to_alnum_edge() -> None:
    # The cut lands right after a dot: it must be dropped.
    node = "a" * 45 + "." + "b" * 30
    value = node_label_value(node)
    assert value.startswith("a" * 45 + "-")
    assert is_label_value(value)


@given(node_names)
def test_node_label_value_always_valid(node: str) -> None:
    value = node_label_value(node)
    assert is_label_value(value)
    assert value == node_label_value(node)


@given(st.one_of(node_names, long_node_names), st.one_of(node_names, long_node_names))
def test_distinct_nodes_give_distinct_label_values(a: str, b: str) -> None:
    if a != b:
        assert node_label_value(a) != node_label_value(b)


def test_adversarial_node_names_give_distinct_label_values() -> None:
    nodes = set(adversarial_node_names())
    values = {node_label_value(n) for n in nodes}
    assert len(values) == len(nodes)
    assert all(is_label_value(v) for v in values)


def test_remote_namespace_object() -> None:
    obj = remote_namespace_object(
        "vk-ak-example",
        "crossplane-system",
        extra_labels={"team": "a", LABEL_NODE: "spoofed"},
    )
    assert obj == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "vk-ak-example-d05fe343c4951ecb",
            "labels": {
                "team": "a",
                LABEL_NODE: "vk-ak-example",
                LABEL_NAMESPACE: "crossplane-system",
                LABEL_MANAGED_BY: "actual-kubelets",
            },
        },
    }


def test_remote_namespace_object_long_node_uses_label_value() -> None:
    node = "b" * 80
    labels = remote_namespace_object(node, "default")["metadata"]["labels"]
    assert labels[LABEL_NODE] == node_label_value(node)
    assert labels[LABEL_NODE] != node
