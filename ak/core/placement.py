"""Where remote pods land on the remote cluster: the operator's choice first.

AK drops a local pod's scheduling fields (they name local nodes and taints).
An operator whose remote cluster has node pools chooses instead, once, for
every pod of this AK node: a node selector, tolerations and a runtime class
added to every remote pod (``[pods.placement]``). A pod may narrow that
further within the operator's allow-list (``ak.core.tenant_placement``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ak.core.types import Obj
from ak.core.validation import is_qualified_name

_OPERATORS = ("Equal", "Exists")
_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")
_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")


@dataclass(frozen=True)
class Allowed:
    """The operator's allow-list: label key (or taint key) -> allowed values;
    an empty tuple allows every value of that key."""

    node_labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tolerations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


NOTHING = Allowed()


@dataclass(frozen=True)
class Placement:
    node_selector: Mapping[str, str]
    tolerations: tuple[Obj, ...] = ()
    runtime_class_name: str | None = None
    # What a pod may add with its own request (ak/core/tenant_placement.py).
    allowed: Allowed = NOTHING

    def apply(self, spec: dict[str, Any]) -> None:
        """Add the placement to a remote pod spec (which has none of its own)."""
        if self.node_selector:
            spec["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            spec["tolerations"] = [dict(t) for t in self.tolerations]
        if self.runtime_class_name:
            spec["runtimeClassName"] = self.runtime_class_name


NONE = Placement({})


def toleration(item: object) -> Obj:
    """A toleration as Kubernetes validates it; raises ValueError with the reason."""
    if not isinstance(item, dict):
        raise ValueError("expected a table with key, operator, value, effect")
    unknown = sorted(set(item) - set(_KEYS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (expected one of {', '.join(_KEYS)})")
    for k in ("key", "operator", "value", "effect"):
        if k in item and not isinstance(item[k], str):
            raise ValueError(f"{k} must be a string")
    key, value = item.get("key", ""), item.get("value", "")
    operator = item.get("operator", "Equal")
    effect = item.get("effect", "")
    if key and not is_qualified_name(key):
        raise ValueError(f"key {key!r} is not a valid label key")
    if operator not in _OPERATORS:
        raise ValueError(f"operator {operator!r} is not Equal or Exists")
    if operator == "Exists" and value:
        raise ValueError("value must be empty with operator Exists")
    if not key and operator != "Exists":
        raise ValueError("an empty key needs operator Exists")
    if effect not in _EFFECTS:
        raise ValueError(f"effect {effect!r} is not NoSchedule, PreferNoSchedule or NoExecute")
    out: Obj = {"operator": operator}
    if key:
        out["key"] = key
    if value:
        out["value"] = value
    if effect:
        out["effect"] = effect
    if "tolerationSeconds" in item:
        seconds = item["tolerationSeconds"]
        if effect != "NoExecute":
            raise ValueError("tolerationSeconds needs effect NoExecute")
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            raise ValueError("tolerationSeconds must be an integer")
        out["tolerationSeconds"] = seconds
    return out
