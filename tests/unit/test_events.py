from datetime import UTC, datetime

from ak.core.events import event_object
from ak.core.types import Obj
from ak.core.validation import is_dns_subdomain
from tests.unit.fixtures import NODE, POD_UID, deployment_pod

NOW = datetime(2026, 11, 22, 2, 11, 44, 999999, tzinfo=UTC)


def test_pod_event() -> None:
    event = event_object(
        deployment_pod(),
        reason="ProviderCreateFailed",
        message="remote said no",
        host=NODE,
        now=NOW,
        suffix="187a3c2f4e5d6b70",
    )
    assert event == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": "crossplane-684d498858-frd4t.187a3c2f4e5d6b70",
            "namespace": "crossplane-system",
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "crossplane-684d498858-frd4t",
            "namespace": "crossplane-system",
            "uid": POD_UID,
            "resourceVersion": "48213",
        },
        "reason": "ProviderCreateFailed",
        "message": "remote said no",
        "type": "Warning",
        "source": {"component": "actual-kubelets", "host": NODE},
        "firstTimestamp": "2026-11-22T02:11:44Z",
        "lastTimestamp": "2026-11-22T02:11:44Z",
        "count": 1,
        "reportingComponent": "actual-kubelets",
        "reportingInstance": NODE,
    }


def test_node_event_goes_to_default_namespace() -> None:
    node: Obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "uid": "n-uid"}}
    event = event_object(
        node, reason="NodeReady", message="ok", type_="Normal", host=NODE, now=NOW, suffix="a1"
    )
    assert event["metadata"] == {"name": f"{NODE}.a1", "namespace": "default"}
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Node",
        "name": NODE,
        "uid": "n-uid",
    }
    assert event["type"] == "Normal"


def test_list_item_without_kind_is_a_pod() -> None:
    pod = deployment_pod()
    del pod["kind"], pod["apiVersion"]
    event = event_object(pod, reason="R", message="m", host=NODE, now=NOW, suffix="1")
    assert (event["involvedObject"]["kind"], event["involvedObject"]["apiVersion"]) == ("Pod", "v1")


def test_long_name_and_message_are_cut() -> None:
    pod = deployment_pod()
    pod["metadata"]["name"] = "a" * 240 + "-" + "b" * 12
    event = event_object(pod, reason="R", message="x" * 5000, host=NODE, now=NOW, suffix="f" * 16)
    name = event["metadata"]["name"]
    assert len(name) <= 253
    assert name.endswith("." + "f" * 16)
    assert is_dns_subdomain(name)
    assert len(event["message"]) == 1024
