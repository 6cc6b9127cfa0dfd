"""kwok configuration: the remote cluster's simulated nodes and containers.

kwok refuses to start without Stages. These are our own minimal ones, chosen
for AK's tests: remote pods have no ownerReferences (AK copies none), so pods
complete by restartPolicy rather than by a Job owner as in kwok's samples.
The logs/exec/attach/port-forward simulations make `kubectl logs/exec/attach/
port-forward` against a remote pod work through the remote apiserver, which is
the path AK proxies the kubelet API to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

API = "kwok.x-k8s.io/v1alpha1"
# Nodes with it are kwok's to simulate (--manage-nodes-with-annotation-selector).
KWOK_ANNOTATION = "kwok.x-k8s.io/node"

_NODE_READY = """\
{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
{{ with NodeIP }}
- address: {{ . | Quote }}
  type: InternalIP
{{ end }}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
allocatable:
{{ with .status.allocatable }}{{ YAML . 1 }}{{ else }}
  cpu: "64"
  memory: 256Gi
  pods: "10000"
{{ end }}
capacity:
{{ with .status.capacity }}{{ YAML . 1 }}{{ else }}
  cpu: "64"
  memory: 256Gi
  pods: "10000"
{{ end }}
nodeInfo:
  architecture: amd64
  bootID: ""
  containerRuntimeVersion: kwok
  kernelVersion: kwok
  kubeProxyVersion: kwok
  kubeletVersion: kwok
  machineID: ""
  operatingSystem: linux
  osImage: ""
  systemUUID: ""
phase: Running
"""

_POD_RUNNING = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodReadyToStartContainers
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  imageID: {{ printf "kwok://%s" .image | Quote }}
  containerID: {{ printf "kwok://%s" .name | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
{{ with NodeIPWith .spec.nodeName }}
hostIP: {{ . | Quote }}
hostIPs:
- ip: {{ . | Quote }}
{{ end }}
{{ with PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
  ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
podIP: {{ . | Quote }}
podIPs:
- ip: {{ . | Quote }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""

# `kubectl debug`: an ephemeral container added to a running pod starts at once.
_EPHEMERAL_RUNNING = """\
{{ $now := Now }}
ephemeralContainerStatuses:
{{ range .spec.ephemeralContainers }}
- image: {{ .image | Quote }}
  imageID: {{ printf "kwok://%s" .image | Quote }}
  containerID: {{ printf "kwok://%s" .name | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
"""

_POD_SUCCEEDED = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: PodCompleted
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: PodCompleted
  type: ContainersReady
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""


def _stage(
    name: str, kind: str, match: list[dict[str, Any]], nxt: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": kind},
            "selector": {"matchExpressions": match},
            "next": nxt,
        },
    }


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


def stages() -> list[dict[str, Any]]:
    ready = '.status.conditions.[] | select( .type == "Ready" ) | .status'
    alive = _expr(".metadata.deletionTimestamp", "DoesNotExist")
    return [
        _stage(
            "node-initialize",
            "Node",
            [_expr(ready, "NotIn", "True")],
            {"statusTemplate": _NODE_READY},
        ),
        _stage(
            "pod-ready",
            "Pod",
            [alive, _expr(".status.phase", "In", "Pending"), _expr(ready, "NotIn", "True")],
            {"statusTemplate": _POD_RUNNING},
        ),
        # Pods that do not restart forever (Jobs, one-shot pods) finish at once.
        _stage(
            "pod-complete",
            "Pod",
            [
                alive,
                _expr(".status.phase", "In", "Running"),
                _expr(".spec.restartPolicy", "In", "Never", "OnFailure"),
            ],
            {"statusTemplate": _POD_SUCCEEDED},
        ),
        _stage(
            "pod-ephemeral-start",
            "Pod",
            [
                alive,
                _expr(".status.phase", "In", "Running"),
                _expr(".spec.ephemeralContainers", "Exists"),
                _expr(".status.ephemeralContainerStatuses", "DoesNotExist"),
            ],
            {"statusTemplate": _EPHEMERAL_RUNNING},
        ),
        _stage(
            "pod-delete",
            "Pod",
            [_expr(".metadata.deletionTimestamp", "Exists")],
            {"delete": True},
        ),
    ]


def simulations(logs_file: Path, previous_logs_file: Path, workdir: Path) -> list[dict[str, Any]]:
    """Logs, exec (runs the command on this host) and attach for every pod.

    kwok reads these only from its config file at start (no CRDs here), so
    port-forward rules (``port_forward``) must be in the list when the cluster
    starts; the kubelet-API tests start a cluster of their own with one.
    """
    selector: dict[str, Any] = {}
    return [
        {
            "apiVersion": API,
            "kind": "ClusterLogs",
            "metadata": {"name": "all"},
            "spec": {
                "selector": selector,
                "logs": [
                    {
                        "logsFile": str(logs_file),
                        "previousLogsFile": str(previous_logs_file),
                        "follow": True,
                    }
                ],
            },
        },
        {
            "apiVersion": API,
            "kind": "ClusterExec",
            "metadata": {"name": "all"},
            "spec": {"selector": selector, "execs": [{"local": {"workDir": str(workdir)}}]},
        },
        {
            "apiVersion": API,
            "kind": "ClusterAttach",
            "metadata": {"name": "all"},
            "spec": {"selector": selector, "attaches": [{"logsFile": str(logs_file)}]},
        },
    ]


def port_forward(port: int, target_port: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ClusterPortForward",
        "metadata": {"name": f"port-{port}"},
        "spec": {
            "forwards": [{"ports": [port], "target": {"port": target_port, "address": "127.0.0.1"}}]
        },
    }


def write_config(path: Path, documents: list[dict[str, Any]]) -> None:
    # JSON is YAML: one document per object, no YAML library needed.
    path.write_text("\n---\n".join(json.dumps(d) for d in documents) + "\n")
