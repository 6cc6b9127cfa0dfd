from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ak.core.labels import (
    ANNOTATION_SOURCE_UID,
    LABEL_MANAGED_BY,
    LABEL_NAMESPACE,
    LABEL_NODE,
    LABEL_REPLICA,
)
from ak.core.pods import to_remote_pod
from ak.core.services import (
    is_own_service,
    selector,
    selects,
    service_needs_replace,
    service_needs_update,
    to_remote_service,
    unsupported,
)
from ak.core.types import Obj
from tests.unit.fixtures import NAMESPACE, NODE, REMOTE_NAMESPACE, deployment_pod


def service(spec: Obj, **meta: Any) -> Obj:
    return {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NAMESPACE, "uid": "u-1", **meta},
        "spec": spec,
    }


def copy_of(svc: Obj) -> Obj:
    return to_remote_service(svc, node_name=NODE, remote_namespace=REMOTE_NAMESPACE)


FULL_LOAD_BALANCER: Obj = {
    "type": "LoadBalancer",
    "selector": {"app": "web"},
    "ports": [
        {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "appProtocol": "h2c"},
        {"port": 53, "protocol": "UDP", "nodePort": 30053},
    ],
    "clusterIP": "10.0.0.10",
    "clusterIPs": ["10.0.0.10"],
    "ipFamilies": ["IPv4"],
    "ipFamilyPolicy": "SingleStack",
    "sessionAffinity": "ClientIP",
    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
    "externalTrafficPolicy": "Local",
    "healthCheckNodePort": 31000,
    "externalIPs": ["1.2.3.4"],
    "loadBalancerIP": "5.6.7.8",
    "loadBalancerSourceRanges": ["0.0.0.0/0"],
    "loadBalancerClass": "x",
    "allocateLoadBalancerNodePorts": True,
    "internalTrafficPolicy": "Local",
    "publishNotReadyAddresses": True,
}


def test_copy_keeps_what_serves_pods_and_drops_allocations() -> None:
    svc = service(FULL_LOAD_BALANCER, labels={"team": "a"}, annotations={"x": "y"})
    copy = copy_of(svc)
    assert copy["metadata"] == {
        "name": "web",
        "namespace": REMOTE_NAMESPACE,
        "labels": {
            "team": "a",
            LABEL_NODE: NODE,
            LABEL_NAMESPACE: NAMESPACE,
            LABEL_MANAGED_BY: "actual-kubelets",
            LABEL_REPLICA: "true",
        },
        "annotations": {ANNOTATION_SOURCE_UID: "u-1"},
    }
    assert copy["spec"] == {
        "type": "ClusterIP",
        "selector": {"app": "web"},
        "ports": [
            {
                "name": "http",
                "port": 80,
                "protocol": "TCP",
                "targetPort": "http",
                "appProtocol": "h2c",
            },
            {"port": 53, "protocol": "UDP", "targetPort": 53},
        ],
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
        "publishNotReadyAddresses": True,
    }


def test_headless_stays_headless() -> None:
    copy = copy_of(service({"clusterIP": "None", "selector": {"a": "b"}}))
    assert copy["spec"]["clusterIP"] == "None"
    assert "clusterIP" not in copy_of(service({"clusterIP": "10.0.0.1"}))["spec"]


def test_affinity_timeout_defaults() -> None:
    copy = copy_of(service({"sessionAffinity": "ClientIP"}))
    assert copy["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_selector_matches_remote_pod_as_local_pod() -> None:
    # The remote pod keeps its local labels, so the same selector picks it.
    local = deployment_pod()
    remote = to_remote_pod(local, node_name=NODE, remote_namespace=REMOTE_NAMESPACE, extra_env=[])
    sel = dict(local["metadata"]["labels"])
    assert selects(sel, local)
    assert selects(sel, remote)
    assert copy_of(service({"selector": sel}))["spec"]["selector"] == sel


labels = st.dictionaries(st.sampled_from("abcde"), st.sampled_from("xyz"), max_size=5)


@given(labels, labels)
def test_selects_is_subset(sel: dict[str, str], pod_labels: dict[str, str]) -> None:
    pod = {"metadata": {"labels": pod_labels}}
    assert selects(sel, pod) == (bool(sel) and sel.items() <= pod_labels.items())


def test_selectorless_and_external_name_select_nothing() -> None:
    assert selector(service({"ports": [{"port": 80}]})) == {}
    assert selector(service({"type": "ExternalName", "selector": {"a": "b"}})) == {}
    assert not selects({}, {"metadata": {"labels": {"a": "b"}}})


def as_remote_returns(copy: Obj) -> Obj:
    """The copy as the remote API server hands it back: defaults and allocations filled in."""
    spec = dict(copy["spec"])
    spec.setdefault("clusterIP", "10.96.0.7")
    spec["clusterIPs"] = [spec["clusterIP"]]
    spec["ipFamilies"] = ["IPv4"]
    spec["ipFamilyPolicy"] = "SingleStack"
    spec["internalTrafficPolicy"] = "Cluster"
    meta = {**copy["metadata"], "resourceVersion": "5", "uid": "r-1"}
    meta["annotations"] = {**meta["annotations"], "remote-tool": "x"}
    return {**copy, "metadata": meta, "spec": spec}


specs = st.fixed_dictionaries(
    {
        "selector": labels,
        "ports": st.lists(
            st.fixed_dictionaries(
                {"port": st.integers(1, 65535)},
                optional={
                    "name": st.sampled_from(["http", "grpc"]),
                    "protocol": st.sampled_from(["TCP", "UDP", "SCTP"]),
                    "targetPort": st.one_of(st.integers(1, 65535), st.just("http")),
                    "nodePort": st.integers(30000, 32767),
                },
            ),
            max_size=3,
        ),
    },
    optional={
        "type": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]),
        "clusterIP": st.sampled_from(["None", "10.0.0.1"]),
        "sessionAffinity": st.sampled_from(["None", "ClientIP"]),
        "publishNotReadyAddresses": st.booleans(),
    },
)


@given(specs)
def test_copy_in_step_needs_nothing(spec: Obj) -> None:
    desired = copy_of(service(spec))
    current = as_remote_returns(desired)
    assert not service_needs_update(desired, current)
    assert not service_needs_replace(desired, current)


@given(specs, specs)
def test_changes_are_seen(a: Obj, b: Obj) -> None:
    old, new = copy_of(service(a)), copy_of(service(b))
    current = as_remote_returns(old)
    if old["spec"] != new["spec"]:
        assert service_needs_update(new, current)
    assert service_needs_replace(new, current) == (
        (a.get("clusterIP") == "None") != (b.get("clusterIP") == "None")
    )


def test_label_and_uid_changes_need_update() -> None:
    desired = copy_of(service({"selector": {"a": "b"}}, labels={"v": "2"}))
    current = as_remote_returns(copy_of(service({"selector": {"a": "b"}}, labels={"v": "1"})))
    assert service_needs_update(desired, current)
    recreated = copy_of(service({"selector": {"a": "b"}}, labels={"v": "1"}, uid="u-2"))
    assert service_needs_update(recreated, current)


def test_is_own_service() -> None:
    copy = copy_of(service({}))
    assert is_own_service(copy, NODE, NAMESPACE)
    assert not is_own_service(copy, "other-node", NAMESPACE)
    assert not is_own_service(copy, NODE, "other-ns")
    users = {"metadata": {"labels": {LABEL_NODE: NODE, LABEL_NAMESPACE: NAMESPACE}}}
    assert not is_own_service(users, NODE, NAMESPACE)


def test_unsupported() -> None:
    assert unsupported(service({"selector": {"a": "b"}})) == []
    problems = unsupported(service(FULL_LOAD_BALANCER))
    assert len(problems) == 6  # its UDP port among them
    assert problems[0].startswith("type LoadBalancer is reflected as ClusterIP")
    assert unsupported(service({"type": "NodePort"}))[0].startswith("type NodePort")
    dns = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    assert unsupported(service(dns)) == [
        "port 53/UDP reaches pods on the AK node only from the remote cluster: AK carries "
        "TCP only from the local cluster"
    ]


COPIED_SPEC = {
    "type",
    "selector",
    "ports",
    "sessionAffinity",
    "sessionAffinityConfig",
    "publishNotReadyAddresses",
    "clusterIP",
}
anything = st.one_of(st.text(max_size=5), st.integers(), st.booleans())


@given(specs, st.dictionaries(st.text(max_size=12), anything, max_size=6))
def test_copy_is_allow_listed(spec: Obj, extra: Obj) -> None:
    # Fields added to ServiceSpec later, or ones AK must not copy, never leak.
    copy = copy_of(service({**extra, **FULL_LOAD_BALANCER, **spec}))
    assert set(copy["spec"]) <= COPIED_SPEC
    assert copy["spec"]["type"] == "ClusterIP"
    assert copy["spec"].get("clusterIP") in (None, "None")
    assert all(
        set(p) <= {"name", "port", "protocol", "targetPort", "appProtocol"}
        for p in copy["spec"]["ports"]
    )
