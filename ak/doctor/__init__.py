"""``ak doctor``: check, from the same settings as ``ak run``, that AK can work.

One line per check, ``✓`` or ``✗`` (``-`` when skipped because an earlier
check failed), and under each failure one line telling how to fix it. Exit
status 0 only when every check passed, else 1; a bad setting is still the
CLI's one-line error with exit 2.

What is checked, on each cluster: the kubeconfig loads, the API server answers
``/version``, the credentials are accepted (SelfSubjectReview) and every
permission AK uses is granted (SelfSubjectAccessReview, one line per
resource). On the local cluster AK should hold a kubelet's identity
(``system:node:<node name>`` in ``system:nodes``), which the Node authorizer
and NodeRestriction limit to its own node; any other identity needs the
equivalent RBAC (the Helm chart's ClusterRole). Also: the node name (valid, the
label value and remote namespace names it gives, not taken by a real node),
the version skew between the clusters, the local API endpoint that remote
pods are given and, when AK already runs as the node, whether its kubelet
API serves (the node's ``KubeletAPIUnavailable`` condition), and how the
tenants' pods are isolated on the remote network (``isolation``: what AK
writes is visible, whether the remote network plugin enforces it is not).

The permission tables (``permissions``) are what AK's controllers call; the
Helm chart's ClusterRole and ``packaging/remote-rbac.yaml`` grant exactly
these, and the tests check that they stay in step.

``checklist`` is the report the checks add to; ``clusters`` checks each
cluster (connection, version skew, credentials, permissions), ``node`` the
node (its name, its kubelet API, the endpoint remote pods use); ``report``
runs them in order as ``Doctor`` and prints the result. Callers import the
package: ``from ak.doctor import Doctor``.
"""

from ak.doctor.checklist import Check, Checklist, Side
from ak.doctor.clusters import MAX_MINOR_SKEW, ClusterChecks
from ak.doctor.node import NodeChecks
from ak.doctor.permissions import (
    LOCAL_NETWORK_POLICY_PERMISSIONS,
    LOCAL_PEER_PERMISSIONS,
    LOCAL_PERMISSIONS,
    LOCAL_STORAGE_PERMISSIONS,
    REMOTE_PERMISSIONS,
    REMOTE_RBAC_HINT,
    REMOTE_STORAGE_PERMISSIONS,
    Permission,
)
from ak.doctor.report import Doctor, diagnose, main, report

__all__ = [
    "LOCAL_NETWORK_POLICY_PERMISSIONS",
    "LOCAL_PEER_PERMISSIONS",
    "LOCAL_PERMISSIONS",
    "LOCAL_STORAGE_PERMISSIONS",
    "MAX_MINOR_SKEW",
    "REMOTE_PERMISSIONS",
    "REMOTE_RBAC_HINT",
    "REMOTE_STORAGE_PERMISSIONS",
    "Check",
    "Checklist",
    "ClusterChecks",
    "Doctor",
    "NodeChecks",
    "Permission",
    "Side",
    "diagnose",
    "main",
    "report",
]
