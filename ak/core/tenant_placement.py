"""Remote placement a tenant asks for per pod, within what the operator allows.

A pod may carry ``actual.vk/remote-placement``: JSON with any of
``nodeSelector``, ``affinity`` (node affinity only), ``tolerations`` and
``topologySpreadConstraints``, naming the *remote* cluster's node labels and
taints (its own scheduling fields name local ones and are dropped). Every
label key and value it targets and every taint it tolerates must be in the
operator's allow-list (``[pods.placement.allowed]``); anything else refuses
the pod with the reason (``TranslationError``), never a silent drop, since a
GPU pod placed anywhere is worse than one that says why it did not start.

The operator's own placement (``ak.core.placement.Placement``) always stays:
its nodeSelector entries cannot be overridden (a request for another value of
one of its keys is refused), its tolerations and runtime class are kept, and
the tenant's choices only narrow where the pod may go further.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ak.core.errors import TranslationError
from ak.core.labels import PREFIX
from ak.core.placement import Allowed, toleration
from ak.core.types import Obj
from ak.core.validation import is_label_value, is_qualified_name

ANNOTATION = PREFIX + "remote-placement"

REASON_INVALID = "InvalidRemotePlacement"
REASON_REFUSED = "RemotePlacementNotAllowed"

_FIELDS = ("nodeSelector", "affinity", "tolerations", "topologySpreadConstraints")
# Operators that only name values a tenant lists (In) or exclude some
# (NotIn, DoesNotExist) never reach a value outside the allow-list; Exists,
# Gt and Lt match any value, so they need a key whose values are all allowed.
_NARROWING = ("In", "NotIn", "DoesNotExist")
_ANY_VALUE = ("Exists", "Gt", "Lt")


def _refuse(message: str) -> TranslationError:
    return TranslationError(REASON_REFUSED, f"{ANNOTATION}: {message}")


def _invalid(message: str) -> TranslationError:
    return TranslationError(REASON_INVALID, f"{ANNOTATION}: {message}")


def _check_label(allowed: Allowed, key: str, values: list[str] | None, where: str) -> None:
    """``values`` None: any value of ``key`` may be matched."""
    if key not in allowed.node_labels:
        raise _refuse(f"{where} targets node label {key!r}, which the operator does not allow")
    permitted = allowed.node_labels[key]
    if not permitted:
        return
    if values is None:
        raise _refuse(
            f"{where} matches any value of node label {key!r}; the operator allows only "
            + ", ".join(repr(v) for v in permitted)
        )
    for value in values:
        if value not in permitted:
            raise _refuse(f"{where} targets {key}={value!r}, which the operator does not allow")


def _node_selector(
    request: object, allowed: Allowed, operator_selector: Mapping[str, str]
) -> dict[str, str]:
    if not isinstance(request, dict):
        raise _invalid("nodeSelector must be an object")
    for key, value in request.items():
        if not is_qualified_name(key) or not isinstance(value, str) or not is_label_value(value):
            raise _invalid(f"nodeSelector {key!r}: {value!r} is not a valid label")
        if key in operator_selector:
            if operator_selector[key] != value:
                raise _refuse(
                    f"nodeSelector {key}={value!r} contradicts the operator's "
                    f"{key}={operator_selector[key]!r}"
                )
            continue
        _check_label(allowed, key, [value], "nodeSelector")
    return dict(request)


def _expressions(term: object, allowed: Allowed, where: str) -> None:
    if not isinstance(term, dict):
        raise _invalid(f"{where} must be an object")
    if term.get("matchFields"):
        raise _refuse(f"{where} uses matchFields, which names remote nodes; use labels")
    for expr in term.get("matchExpressions") or []:
        if not isinstance(expr, dict) or not isinstance(expr.get("key"), str):
            raise _invalid(f"{where}: a matchExpression needs a key")
        op = expr.get("operator")
        values = expr.get("values") or []
        if op in _NARROWING:
            # NotIn/DoesNotExist exclude nodes: the key must still be one the
            # operator lets tenants look at, but any value may be excluded.
            narrowed = values if op == "In" else []
            _check_label(allowed, expr["key"], [str(v) for v in narrowed], where)
        elif op in _ANY_VALUE:
            _check_label(allowed, expr["key"], None, where)
        else:
            raise _invalid(
                f"{where}: operator {op!r} is not In, NotIn, Exists, DoesNotExist, Gt or Lt"
            )


def _affinity(request: object, allowed: Allowed) -> Obj:
    if not isinstance(request, dict):
        raise _invalid("affinity must be an object")
    other = sorted(set(request) - {"nodeAffinity"})
    if other:
        # Pod (anti-)affinity looks at the remote cluster's other pods, which
        # may be other tenants'; not something a tenant may steer by.
        raise _refuse(f"affinity.{other[0]} is not supported, only affinity.nodeAffinity")
    node = request.get("nodeAffinity") or {}
    if not isinstance(node, dict):
        raise _invalid("affinity.nodeAffinity must be an object")
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for i, term in enumerate((required or {}).get("nodeSelectorTerms") or []):
        _expressions(term, allowed, f"nodeAffinity required term {i + 1}")
    for i, pref in enumerate(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
        if not isinstance(pref, dict):
            raise _invalid("nodeAffinity preferred terms must be objects")
        _expressions(pref.get("preference") or {}, allowed, f"nodeAffinity preference {i + 1}")
    return request


def _tolerations(request: object, allowed: Allowed) -> list[Obj]:
    if not isinstance(request, list):
        raise _invalid("tolerations must be a list")
    out = []
    for i, item in enumerate(request, 1):
        try:
            tol = toleration(item)
        except ValueError as e:
            raise _invalid(f"toleration {i}: {e}") from None
        key = tol.get("key", "")
        if not key:
            raise _refuse(
                f"toleration {i} tolerates every taint, which the operator does not allow"
            )
        if key not in allowed.tolerations:
            raise _refuse(
                f"toleration {i} tolerates taint {key!r}, which the operator does not allow"
            )
        permitted = allowed.tolerations[key]
        if permitted and (tol["operator"] == "Exists" or tol.get("value", "") not in permitted):
            raise _refuse(
                f"toleration {i} tolerates {key}={tol.get('value', '*')!r}; "
                "the operator allows only " + ", ".join(repr(v) for v in permitted)
            )
        out.append(tol)
    return out


def _spread(request: object, allowed: Allowed) -> list[Obj]:
    if not isinstance(request, list):
        raise _invalid("topologySpreadConstraints must be a list")
    for i, item in enumerate(request, 1):
        if not isinstance(item, dict) or not isinstance(item.get("topologyKey"), str):
            raise _invalid(f"topologySpreadConstraint {i} needs a topologyKey")
        if item["topologyKey"] not in allowed.node_labels:
            raise _refuse(
                f"topologySpreadConstraint {i} spreads over node label "
                f"{item['topologyKey']!r}, which the operator does not allow"
            )
    return request


def requested(pod: Obj) -> Obj | None:
    """The pod's placement request, parsed; None without the annotation."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(ANNOTATION)
    if text is None:
        return None
    try:
        request = json.loads(text)
    except ValueError as e:
        raise _invalid(f"not JSON ({e})") from None
    if not isinstance(request, dict):
        raise _invalid("must be a JSON object")
    unknown = sorted(set(request) - set(_FIELDS))
    if unknown:
        raise _invalid(f"unknown field {unknown[0]!r} (expected {', '.join(_FIELDS)})")
    return request


def merge(
    spec: dict[str, Any],
    request: Obj,
    allowed: Allowed,
    operator_selector: Mapping[str, str],
) -> None:
    """Check ``request`` against ``allowed`` and add it to a remote pod spec
    that already carries the operator's placement; raises ``TranslationError``."""
    if "nodeSelector" in request:
        selector = _node_selector(request["nodeSelector"], allowed, operator_selector)
        spec["nodeSelector"] = {**selector, **spec.get("nodeSelector", {})}
    if "affinity" in request:
        spec["affinity"] = _affinity(request["affinity"], allowed)
    if "tolerations" in request:
        have = spec.get("tolerations") or []
        spec["tolerations"] = have + [
            t for t in _tolerations(request["tolerations"], allowed) if t not in have
        ]
    if "topologySpreadConstraints" in request:
        spec["topologySpreadConstraints"] = _spread(request["topologySpreadConstraints"], allowed)
    if not spec.get("nodeSelector"):
        spec.pop("nodeSelector", None)
