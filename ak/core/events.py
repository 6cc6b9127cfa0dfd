"""core/v1 Events about pods and the node.

The name suffix is a parameter (the shell passes something unique, e.g. a
random or time-based hex string) so this function stays deterministic.
"""

from datetime import datetime
from typing import Any

from ak.core.timefmt import format_time
from ak.core.types import Obj
from ak.core.validation import DNS_SUBDOMAIN_MAX

MESSAGE_MAX = 1024
"""events.k8s.io caps a note at 1 kB; keeping to it keeps Events small."""


def _involved_ref(involved: Obj) -> Obj:
    metadata: dict[str, Any] = involved.get("metadata") or {}
    # Items of a LIST response carry no kind; AK only reports on pods then.
    ref: Obj = {
        "apiVersion": involved.get("apiVersion", "v1"),
        "kind": involved.get("kind", "Pod"),
        "name": metadata.get("name", ""),
    }
    for key in ("namespace", "uid", "resourceVersion"):
        if metadata.get(key):
            ref[key] = metadata[key]
    return ref


def event_object(
    involved: Obj,
    *,
    reason: str,
    message: str,
    type_: str = "Warning",
    component: str = "actual-kubelets",
    host: str,
    now: datetime,
    suffix: str,
) -> Obj:
    ref = _involved_ref(involved)
    # Cluster-scoped objects (the Node) get their events in "default", as
    # the kubelet's do; the API server rejects any other namespace for them.
    namespace = ref.get("namespace", "default")
    # Cut the object's name, not the suffix, to stay a valid DNS subdomain.
    base = ref["name"][: DNS_SUBDOMAIN_MAX - 1 - len(suffix)].rstrip("-.")
    name = f"{base}.{suffix}"
    ts = format_time(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": ref,
        "reason": reason,
        "message": message[:MESSAGE_MAX],
        "type": type_,
        "source": {"component": component, "host": host},
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": host,
    }
