"""Objects as the local API server returns them, for the unit tests.

Functions rather than constants, so a test that mutates its copy cannot
leak into another test.
"""

import ssl

from ak.core.types import Obj
from ak.kube.client import KubeClient
from ak.kube.config import ClusterConfig

NODE = "vk-ak-example"
NAMESPACE = "crossplane-system"
REMOTE_NAMESPACE = "vk-ak-example-d05fe343c4951ecb"
POD_UID = "6d3f1a52-9b1e-4f0c-8a53-3c1d2f7b9e10"


def deployment_pod() -> Obj:
    """A pod of a Deployment after admission, scheduling and binding."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "crossplane-684d498858-frd4t",
            "generateName": "crossplane-684d498858-",
            "namespace": NAMESPACE,
            "uid": POD_UID,
            "resourceVersion": "48213",
            "creationTimestamp": "2026-11-22T01:00:00Z",
            "labels": {"app": "crossplane", "pod-template-hash": "684d498858"},
            "annotations": {"prometheus.io/scrape": "true"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "crossplane-684d498858",
                    "uid": "0b7c5a0e-1f5d-4a8e-9c1a-2b3c4d5e6f70",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-11-22T01:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {}},
                }
            ],
        },
        "spec": {
            "volumes": [
                {"name": "certs", "secret": {"secretName": "crossplane-certs", "defaultMode": 420}},
                {
                    "name": "kube-api-access-x7k2p",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            },
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                },
            ],
            "containers": [
                {
                    "name": "crossplane",
                    "image": "crossplane/crossplane:v0.13.0",
                    "args": ["core", "start"],
                    "env": [
                        {
                            "name": "POD_NAMESPACE",
                            "valueFrom": {
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}
                            },
                        },
                        {"name": "LEADER_ELECTION", "value": "true"},
                    ],
                    "resources": {"limits": {"cpu": "100m", "memory": "512Mi"}},
                    "volumeMounts": [
                        {"name": "certs", "mountPath": "/certs", "readOnly": True},
                        {
                            "name": "kube-api-access-x7k2p",
                            "readOnly": True,
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        },
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "crossplane",
            "serviceAccount": "crossplane",
            "nodeName": NODE,
            "securityContext": {"runAsUser": 65532, "runAsNonRoot": True},
            "imagePullSecrets": [{"name": "registry-creds"}],
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "virtual-kubelet.io/provider",
                    "operator": "Equal",
                    "value": "actual-kubelets",
                    "effect": "NoSchedule",
                },
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": "2026-11-22T01:00:01Z",
                }
            ],
            "qosClass": "Burstable",
        },
    }


def remote_running_status() -> Obj:
    """Status the remote kubelet reports once the pod runs."""
    return {
        "phase": "Running",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "PodReadyToStartContainers",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-11-22T01:00:05Z",
            },
            {
                "type": "Initialized",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-11-22T01:00:03Z",
            },
            {
                "type": "Ready",
                "status": "True",
                "observedGeneration": 1,
                "lastProbeTime": None,
                "lastTransitionTime": "2026-11-22T01:00:09Z",
            },
            {
                "type": "ContainersReady",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-11-22T01:00:09Z",
            },
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-11-22T01:00:02Z",
            },
        ],
        "hostIP": "10.128.0.7",
        "hostIPs": [{"ip": "10.128.0.7"}],
        "podIP": "10.16.1.9",
        "podIPs": [{"ip": "10.16.1.9"}],
        "startTime": "2026-11-22T01:00:02Z",
        "containerStatuses": [
            {
                "name": "crossplane",
                "state": {"running": {"startedAt": "2026-11-22T01:00:08Z"}},
                "lastState": {},
                "ready": True,
                "restartCount": 0,
                "image": "docker.io/crossplane/crossplane:v0.13.0",
                "imageID": "docker.io/crossplane/crossplane@sha256:abc",
                "containerID": "containerd://0123abcd",
                "started": True,
            }
        ],
        "qosClass": "Burstable",
    }


def offline_client(name: str, server: str = "https://127.0.0.1:9") -> KubeClient:
    """A client for code under test that only touches caches and queues: it never
    connects (unless a test gives it a server of its own)."""
    conf = ClusterConfig(
        server=server, ssl_context=ssl.create_default_context(), token=lambda: None, source="test"
    )
    return KubeClient(conf, name=name)
