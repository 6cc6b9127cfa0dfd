"""Helpers for ``status.conditions`` lists (pods and nodes alike)."""

from ak.core.codec import clone
from ak.core.types import Obj


def find_condition(conditions: list[Obj], type_: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def set_condition(conditions: list[Obj], new: Obj, now: str) -> list[Obj]:
    """Return ``conditions`` with ``new`` replacing the one of its type.

    ``lastTransitionTime`` moves only when the status flips, as the kubelet
    does; otherwise "since when" questions get wrong answers.
    """
    result = [clone(c) for c in conditions if c.get("type") != new["type"]]
    old = find_condition(conditions, new["type"])
    merged = clone(new)
    if old is not None and old.get("status") == new.get("status"):
        merged["lastTransitionTime"] = old.get("lastTransitionTime", now)
    else:
        merged["lastTransitionTime"] = now
    position = next(
        (i for i, c in enumerate(conditions) if c.get("type") == new["type"]), len(result)
    )
    result.insert(position, merged)
    return result
