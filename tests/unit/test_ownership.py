"""The one ownership rule (ak/core/ownership.py): label and place must agree."""

from __future__ import annotations

from ak.core import ownership
from ak.core.labels import LABEL_NAMESPACE
from ak.core.names import remote_namespace
from ak.core.types import Obj

NODE = "ak-1"


def obj(name: str, namespace: str, local_ns: str | None) -> Obj:
    labels = {} if local_ns is None else {LABEL_NAMESPACE: local_ns}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


def test_an_object_in_its_labels_remote_namespace_is_this_nodes() -> None:
    rns = remote_namespace(NODE, "apps")
    assert ownership.local_namespace(obj("web", rns, "apps"), NODE) == "apps"
    assert ownership.local_key(obj("web", rns, "apps"), NODE) == ("apps", "web")


def test_the_label_alone_is_not_proof() -> None:
    rns = remote_namespace(NODE, "apps")
    # Another node's object for the same local namespace name.
    other = obj("web", remote_namespace("ak-2", "apps"), "apps")
    assert ownership.local_namespace(other, NODE) is None
    # A label naming another local namespace than the one the place is for.
    assert ownership.local_key(obj("web", rns, "db"), NODE) is None
    # No label, or an empty one.
    assert ownership.local_key(obj("web", rns, None), NODE) is None
    assert ownership.local_key(obj("web", rns, ""), NODE) is None
    assert ownership.local_key({"metadata": {"name": "x"}}, NODE) is None


def test_a_namespace_is_judged_by_its_own_name() -> None:
    rns = remote_namespace(NODE, "apps")
    ns = {"metadata": {"name": rns, "labels": {LABEL_NAMESPACE: "apps"}}}
    assert ownership.local_namespace_of_namespace(ns, NODE) == "apps"
    assert ownership.local_namespace_of_namespace(ns, "ak-2") is None
    wrong = {"metadata": {"name": rns, "labels": {LABEL_NAMESPACE: "db"}}}
    assert ownership.local_namespace_of_namespace(wrong, NODE) is None
