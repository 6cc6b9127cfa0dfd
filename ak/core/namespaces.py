"""The template every remote namespace gets: labels, annotations, a quota, limits.

Kept in step with the configuration: what the template set before and no
longer sets is removed again (the keys AK applied are recorded on the
namespace), while labels and annotations others add are left alone.
"""

import json
from dataclasses import dataclass, field

from ak.core.labels import (
    AK_POD_LABELS,
    ANNOTATION_TEMPLATE_KEYS,
    LABEL_MANAGED_BY,
    LABEL_NODE,
    MANAGED_BY_VALUE,
)
from ak.core.names import remote_namespace_object
from ak.core.types import Obj

OBJECT_NAME = "actual-kubelets"
"""Name of the ResourceQuota and LimitRange AK puts in each remote namespace."""


@dataclass(frozen=True)
class Template:
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    quota: dict[str, str] = field(default_factory=dict)
    limit_default: dict[str, str] = field(default_factory=dict)
    limit_default_request: dict[str, str] = field(default_factory=dict)
    # The default NetworkPolicies (ak/core/netpol.py); off unless configured
    # (the configuration's default is on).
    isolation: bool = False
    isolation_peers: tuple[Obj, ...] = ()
    isolation_dns: tuple[Obj, ...] = ()


def _record(t: Template) -> str:
    return json.dumps({"labels": sorted(t.labels), "annotations": sorted(t.annotations)})


def namespace_object(node_name: str, local_namespace: str, t: Template) -> Obj:
    ns = remote_namespace_object(node_name, local_namespace, t.labels)
    ns["metadata"]["annotations"] = {**t.annotations, ANNOTATION_TEMPLATE_KEYS: _record(t)}
    return ns


def _applied(current: Obj) -> tuple[set[str], set[str]]:
    raw = (current["metadata"].get("annotations") or {}).get(ANNOTATION_TEMPLATE_KEYS)
    try:
        record = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    return set(record.get("labels", [])), set(record.get("annotations", []))


def namespace_patch(current: Obj, t: Template) -> Obj | None:
    """Merge patch bringing a remote namespace in line with the template, or None."""
    meta = current["metadata"]
    have_labels: dict[str, str] = meta.get("labels") or {}
    have_ann: dict[str, str] = meta.get("annotations") or {}
    old_labels, old_ann = _applied(current)
    labels: dict[str, str | None] = {
        k: v for k, v in t.labels.items() if have_labels.get(k) != v and k not in AK_POD_LABELS
    }
    labels.update(
        {k: None for k in old_labels - t.labels.keys() - AK_POD_LABELS if k in have_labels}
    )
    ann: dict[str, str | None] = {k: v for k, v in t.annotations.items() if have_ann.get(k) != v}
    ann.update({k: None for k in old_ann - t.annotations.keys() if k in have_ann})
    if have_ann.get(ANNOTATION_TEMPLATE_KEYS) != _record(t):
        ann[ANNOTATION_TEMPLATE_KEYS] = _record(t)
    patch: Obj = {}
    if labels:
        patch["labels"] = labels
    if ann:
        patch["annotations"] = ann
    return {"metadata": patch} if patch else None


def _meta(namespace: str, node_label: str = "") -> Obj:
    labels = {LABEL_MANAGED_BY: MANAGED_BY_VALUE}
    if node_label:
        labels[LABEL_NODE] = node_label
    return {"name": OBJECT_NAME, "namespace": namespace, "labels": labels}


def quota_object(namespace: str, t: Template, node_label: str = "") -> Obj | None:
    """The namespace's ResourceQuota; labelled with the node so that AK's watch of
    its quotas (``ak/node/quotas.py``) selects its own, not every tenant's."""
    if not t.quota:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(namespace, node_label),
        "spec": {"hard": dict(t.quota)},
    }


def limit_range_object(namespace: str, t: Template) -> Obj | None:
    if not (t.limit_default or t.limit_default_request):
        return None
    limit: Obj = {"type": "Container"}
    if t.limit_default:
        limit["default"] = dict(t.limit_default)
    if t.limit_default_request:
        limit["defaultRequest"] = dict(t.limit_default_request)
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta(namespace),
        "spec": {"limits": [limit]},
    }


def spec_differs(desired: Obj, current: Obj) -> bool:
    """Whether a quota/limit range must be rewritten. The API server normalises
    quantities ("1000m" -> "1"), so a mismatch may only be notation; rewriting
    then is harmless and converges after one write. A label AK sets and the object
    lacks (written by an older AK) is rewritten too."""
    have = current.get("metadata", {}).get("labels") or {}
    want = desired.get("metadata", {}).get("labels") or {}
    return desired.get("spec") != current.get("spec") or any(
        have.get(k) != v for k, v in want.items()
    )
