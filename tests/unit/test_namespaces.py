from ak.core.labels import ANNOTATION_TEMPLATE_KEYS, LABEL_NODE
from ak.core.namespaces import (
    Template,
    limit_range_object,
    namespace_object,
    namespace_patch,
    quota_object,
)

T = Template(
    labels={"pod-security.kubernetes.io/enforce": "baseline", "team": "a"},
    annotations={"owner": "ops"},
    quota={"pods": "10"},
    limit_default={"cpu": "500m"},
)


def test_new_namespace_carries_template_and_ak_labels() -> None:
    ns = namespace_object("vk-ak-example", "crossplane-system", T)
    assert ns["metadata"]["name"] == "vk-ak-example-d05fe343c4951ecb"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert ns["metadata"]["labels"][LABEL_NODE] == "vk-ak-example"
    assert ns["metadata"]["annotations"]["owner"] == "ops"
    assert namespace_patch(ns, T) is None


def test_template_cannot_disown_a_namespace() -> None:
    evil = Template(labels={LABEL_NODE: "someone-else"})
    ns = namespace_object("vk", "a", evil)
    assert ns["metadata"]["labels"][LABEL_NODE] == "vk"
    assert namespace_patch(ns, evil) is None


def test_changed_template_patches_adds_and_removes_only_its_own_keys() -> None:
    ns = namespace_object("vk", "a", T)
    ns["metadata"]["labels"]["added-by-someone"] = "x"
    new = Template(labels={"pod-security.kubernetes.io/enforce": "restricted"})
    patch = namespace_patch(ns, new)
    assert patch is not None
    assert patch["metadata"]["labels"] == {
        "pod-security.kubernetes.io/enforce": "restricted",
        "team": None,
    }
    assert patch["metadata"]["annotations"]["owner"] is None
    assert ANNOTATION_TEMPLATE_KEYS in patch["metadata"]["annotations"]


def test_quota_and_limit_range_only_when_configured() -> None:
    q = quota_object("ns1", T)
    assert q is not None and q["spec"] == {"hard": {"pods": "10"}}
    lr = limit_range_object("ns1", T)
    assert lr is not None and lr["spec"]["limits"] == [
        {"type": "Container", "default": {"cpu": "500m"}}
    ]
    assert quota_object("ns1", Template()) is None and limit_range_object("ns1", Template()) is None
