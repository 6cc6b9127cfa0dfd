"""What the Node says about its kubelet API: a condition of its own.

The kubelet port serves ``kubectl logs``, ``exec``, ``attach`` and
``port-forward``. When it cannot (the serving CSR awaits approval, the
certificate cannot be had, the port cannot be listened on) those commands get
"connection refused" while everything else about the node works.

Ready stays True then: the pods bound here keep running and in sync, and a
NotReady node is tainted by the node lifecycle controller, which evicts its
pods after 5 minutes: for want of their logs. So the node says it with a
condition of its own, shaped like node-problem-detector's (True means the
problem is there, as for MemoryPressure): ``kubectl describe node`` lists it
beside Ready, kube-state-metrics exports it (``kube_node_status_condition``),
and ``ak doctor`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ak.core.types import Obj

CONDITION = "KubeletAPIUnavailable"

STARTING = "KubeletAPIStarting"
SERVING = "KubeletAPIServing"
CERTIFICATE_PENDING = "ServingCertificatePending"
CERTIFICATE_FAILED = "ServingCertificateFailed"
FAILED = "KubeletAPIFailed"

_CONSEQUENCE = "kubectl logs, exec, attach and port-forward fail until then"


@dataclass(frozen=True)
class KubeletAPIStatus:
    """``status``: the condition's, "True" when the port cannot serve."""

    status: str
    reason: str
    message: str

    @property
    def unavailable(self) -> bool:
        return self.status == "True"


def starting() -> KubeletAPIStatus:
    return KubeletAPIStatus("Unknown", STARTING, "the kubelet API is starting")


def serving(port: int) -> KubeletAPIStatus:
    return KubeletAPIStatus("False", SERVING, f"the kubelet API serves port {port}")


def _unavailable(reason: str, cause: str) -> KubeletAPIStatus:
    return KubeletAPIStatus("True", reason, f"{cause}; {_CONSEQUENCE}")


def certificate_pending(csr: str, signer: str) -> KubeletAPIStatus:
    return _unavailable(
        CERTIFICATE_PENDING,
        f"no serving certificate yet: CSR {csr} (signer {signer}) awaits approval, which is "
        f"never automatic: run `kubectl certificate approve {csr}`",
    )


def certificate_failed(error: str) -> KubeletAPIStatus:
    return _unavailable(CERTIFICATE_FAILED, f"no serving certificate: {error}; retrying")


def failed(port: int, error: str) -> KubeletAPIStatus:
    return _unavailable(
        FAILED,
        f"the kubelet API cannot serve port {port}: {error}; restarting with backoff "
        "(see AK's log)",
    )


def status_of(node: Obj) -> KubeletAPIStatus | None:
    """The condition as a Node reports it; None if it does not (an older AK)."""
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == CONDITION:
            return KubeletAPIStatus(
                str(c.get("status", "Unknown")), str(c.get("reason", "")), str(c.get("message", ""))
            )
    return None
