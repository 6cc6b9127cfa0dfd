"""Value checks: each takes a flag/env string or a TOML value.

Each returns the value as ``Config`` holds it or raises ``_Bad``, which
``loading`` turns into a ``ConfigError`` naming the source. The names keep
their underscore: only the ``ak.config`` modules use them (``is_quantity`` is
public).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from ak.core import placement
from ak.core.node_labels import invalid_node_labels
from ak.core.pod_addresses import parse_range
from ak.core.validation import is_dns_subdomain, is_label_value, is_qualified_name


class _Bad(ValueError):
    """A value is wrong; ``entry`` names the offending key inside a map."""

    def __init__(self, message: str, entry: str | None = None) -> None:
        super().__init__(message)
        self.entry = entry


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool) else repr(value)


def _integer(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise _Bad(f"{_show(value)} is not {what}")
    if not low <= number <= high:
        raise _Bad(f"{_show(value)} is not {what}")
    return number


def _port(value: object) -> int:
    return _integer(value, "a port number (1-65535)", 1, 65535)


def _port_or_zero(value: object) -> int:
    return _integer(value, "a port number (1-65535, or 0 to disable)", 0, 65535)


def _positive(value: object) -> int:
    return _integer(value, "a positive integer", 1, 2**31 - 1)


_DECIMAL = re.compile(r"\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _rate(value: object) -> float:
    rate = math.nan
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and _DECIMAL.fullmatch(value.strip())
    ):
        rate = float(value)
    if not (math.isfinite(rate) and rate >= 0):
        raise _Bad(f"{_show(value)} is not a rate (a number >= 0, 0 = unlimited)")
    return rate


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(f"{_show(value)} is not a boolean (true or false)")


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{_show(value)} is not a string")
    return value


def _optional(value: object) -> str | None:
    """Optional strings: "" means "none" (e.g. in-cluster), overriding lower sources."""
    return _string(value) or None


def _node_name(value: object) -> str:
    name = _string(value)
    if not is_dns_subdomain(name):
        raise _Bad(
            f"{_show(name)} is not a valid node name (a DNS subdomain: at most 253 "
            "characters, lowercase letters, digits, '-' and '.', starting and ending "
            "with a letter or digit)"
        )
    return name


def _ip(value: object) -> str | None:
    text = _optional(value)
    if text is not None:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise _Bad(f"{_show(text)} is not an IP address") from None
    return text


def _address_range(value: object) -> str | None:
    text = _optional(value)
    if text is not None:
        try:
            return str(parse_range(text))
        except ValueError as e:
            raise _Bad(str(e)) from None
    return text


def _host(value: object) -> str | None:
    """A host name or IP; a URL here would end up inside KUBERNETES_SERVICE_HOST."""
    text = _optional(value)
    if text is not None and not re.fullmatch(r"[A-Za-z0-9.:_-]+", text):
        raise _Bad(f"{_show(text)} is not a host name or IP address (no scheme, port or path)")
    return text


_TOKEN_MAX_AGE_MIN = 10


def _token_max_age(value: object) -> int:
    return _integer(
        value, f"a number of seconds ({_TOKEN_MAX_AGE_MIN}-86400)", _TOKEN_MAX_AGE_MIN, 86400
    )


def _choice(*choices: str, aliases: Mapping[str, str] | None = None) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _string(value).strip().lower()
        text = (aliases or {}).get(text, text)
        if text not in choices:
            raise _Bad(f"{_show(value)} is not one of {', '.join(choices)}")
        return text

    return check


# Kubernetes resource.Quantity: <number><suffix>, suffix one of the binary SI
# (Ki..Ei), decimal SI (n u m "" k M G T P E) or an exponent (e3, E-2).
# Negative values are refused: they make no sense as node capacity.
_QUANTITY = re.compile(r"\+?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")


def is_quantity(text: str) -> bool:
    return _QUANTITY.fullmatch(text) is not None


def _table(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{_show(value)} is not a table")
    return value


def _resources(value: object) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, raw in _table(value).items():
        if not is_qualified_name(name):
            raise _Bad("is not a resource name", entry=name)
        # `pods = 1000` is as clear as `pods = "1000"`
        number = isinstance(raw, int | float) and not isinstance(raw, bool)
        quantity = str(raw) if number else raw
        if not isinstance(quantity, str) or not is_quantity(quantity):
            raise _Bad(f"{_show(raw)} is not a Kubernetes quantity", entry=name)
        result[name] = quantity
    return result


def _labels(value: object) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, label in _table(value).items():
        if not is_qualified_name(key):
            raise _Bad("is not a valid label key", entry=key)
        if not isinstance(label, str) or not is_label_value(label):
            raise _Bad(f"{_show(label)} is not a valid label value", entry=key)
        result[key] = label
    return result


def _fraction(value: object) -> float:
    share = _rate(value)
    if not 0 < share <= 1:
        raise _Bad(f"{_show(value)} is not a fraction in (0, 1]")
    return share


def _node_labels(value: object) -> dict[str, str]:
    labels = _labels(value)
    # NodeRestriction refuses these on a node's own object: fail at start, not in a loop.
    refused = invalid_node_labels(labels)
    if refused:
        raise _Bad(
            "is a label a node may not set on itself (NodeRestriction); "
            "use a prefix outside kubernetes.io and k8s.io",
            entry=refused[0],
        )
    return labels


def _annotations(value: object) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, text in _table(value).items():
        if not is_qualified_name(key):
            raise _Bad("is not a valid annotation key", entry=key)
        if not isinstance(text, str):
            raise _Bad(f"{_show(text)} is not a string", entry=key)
        result[key] = text
    return result


_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")  # apimachinery IsEnvVarName


def _env(value: object) -> tuple[tuple[str, str], ...]:
    """``{NAME = "v"}`` or the Kubernetes form ``[{name = "NAME", value = "v"}]``."""
    pairs: list[tuple[str, object]] = []
    if isinstance(value, list):
        for i, item in enumerate(value, 1):
            entry = f"entry {i}"
            if not isinstance(item, dict) or "name" not in item:
                raise _Bad("expected a table with name and value", entry=entry)
            unknown = sorted(set(item) - {"name", "value"})
            if unknown:
                raise _Bad(f"unknown key {_show(unknown[0])}", entry=entry)
            pairs.append((_string(item["name"]), item.get("value", "")))
    else:
        pairs = list(_table(value).items())
    seen: set[str] = set()
    for name, text in pairs:
        if not _ENV_NAME.fullmatch(name):
            raise _Bad("is not a valid environment variable name", entry=name)
        if name in seen:
            raise _Bad("is set twice", entry=name)
        if not isinstance(text, str):
            raise _Bad(f"{_show(text)} is not a string", entry=name)
        seen.add(name)
    return tuple((name, str(text)) for name, text in pairs)


def _tolerations(value: object) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise _Bad(f"{_show(value)} is not a list of tables")
    out = []
    for i, item in enumerate(value, 1):
        try:
            out.append(placement.toleration(item))
        except ValueError as e:
            raise _Bad(str(e), entry=f"entry {i}") from None
    return tuple(out)


def _names(value: object) -> tuple[str, ...]:
    """A list of object names (DNS subdomains), e.g. StorageClasses."""
    if not isinstance(value, list) or not all(
        isinstance(v, str) and is_dns_subdomain(v) for v in value
    ):
        raise _Bad(f"{_show(value)} is not a list of names")
    return tuple(value)


def _allow_list(value: object) -> dict[str, tuple[str, ...]]:
    """``{ key = [values] }``; an empty list allows every value of the key."""
    out: dict[str, tuple[str, ...]] = {}
    for key, values in _table(value).items():
        if not is_qualified_name(key):
            raise _Bad("is not a valid label key", entry=key)
        if not isinstance(values, list) or not all(
            isinstance(v, str) and is_label_value(v) for v in values
        ):
            raise _Bad(f"{_show(values)} is not a list of label values ([] for any)", entry=key)
        out[key] = tuple(values)
    return out


def _runtime_class(value: object) -> str | None:
    name = _optional(value)
    if name is not None and not is_dns_subdomain(name):
        raise _Bad(f"{_show(name)} is not a valid RuntimeClass name")
    return name


_PEER_KEYS = frozenset({"podSelector", "namespaceSelector", "ipBlock"})
_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


def _selector(value: object, entry: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"matchLabels", "matchExpressions"}:
        raise _Bad("a selector has only matchLabels and matchExpressions", entry=entry)
    out: dict[str, Any] = {}
    if "matchLabels" in value:
        try:
            out["matchLabels"] = _labels(value["matchLabels"])
        except _Bad as e:
            raise _Bad(f"matchLabels {e.entry or ''}: {e}", entry=entry) from None
    exprs = value.get("matchExpressions")
    if exprs is not None:
        if not isinstance(exprs, list):
            raise _Bad("matchExpressions is not a list", entry=entry)
        out["matchExpressions"] = []
        for expr in exprs:
            op = expr.get("operator") if isinstance(expr, dict) else None
            values = expr.get("values", []) if isinstance(expr, dict) else None
            if (
                op not in _OPERATORS
                or not isinstance(expr.get("key"), str)
                or not is_qualified_name(expr["key"])
                or not isinstance(values, list)
                or bool(values) != (op in ("In", "NotIn"))
                or not all(isinstance(v, str) and is_label_value(v) for v in values)
            ):
                raise _Bad(f"{_show(expr)} is not a label selector requirement", entry=entry)
            out["matchExpressions"].append(
                {"key": expr["key"], "operator": op, **({"values": values} if values else {})}
            )
    return out


def _peers(value: object) -> tuple[dict[str, Any], ...]:
    """NetworkPolicyPeer tables: ``[{namespaceSelector = {matchLabels = {...}}}]``, or
    the same list as a JSON string (what the Helm chart renders)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Bad(f"{_show(value)} is not a JSON list of NetworkPolicy peers") from None
    if not isinstance(value, list):
        raise _Bad(f"{_show(value)} is not a list of NetworkPolicy peers")
    out = []
    for i, item in enumerate(value, 1):
        entry = f"entry {i}"
        if not isinstance(item, dict) or not item or set(item) - _PEER_KEYS:
            raise _Bad(
                "a peer is a table of podSelector, namespaceSelector or ipBlock", entry=entry
            )
        if "ipBlock" in item:
            block = item["ipBlock"]
            if len(item) > 1 or not isinstance(block, dict) or set(block) - {"cidr", "except"}:
                raise _Bad("ipBlock stands alone and has cidr and except", entry=entry)
            try:
                cidrs = [block["cidr"], *block.get("except", [])]
                for cidr in cidrs:
                    ipaddress.ip_network(cidr, strict=False)
            except (KeyError, TypeError, ValueError):
                raise _Bad(f"{_show(block)} is not an ipBlock", entry=entry) from None
            out.append({"ipBlock": dict(block)})
            continue
        out.append({k: _selector(v, entry) for k, v in item.items()})
    return tuple(out)
