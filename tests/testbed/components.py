"""The command lines of a testbed cluster's processes: kube-apiserver with
authentication and authorization on as in production (Node,RBAC,
NodeRestriction) and the aggregation layer (front proxy),
kube-controller-manager signing CSRs with the cluster's CA, kube-scheduler,
and kwok simulating the remote cluster's nodes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.testbed.kwok import KWOK_ANNOTATION
from tests.testbed.pki import CertPair

if TYPE_CHECKING:
    from tests.testbed.cluster import Cluster


def apiserver(c: Cluster) -> list[str]:
    return [
        c.tools("kube-apiserver"),
        f"--etcd-servers={c.etcd.url}",
        f"--etcd-prefix={c.prefix}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={c.port}",
        "--endpoint-reconciler-type=none",
        "--service-cluster-ip-range=10.0.0.0/24",
        f"--tls-cert-file={c.serving.cert}",
        f"--tls-private-key-file={c.serving.key}",
        f"--client-ca-file={c.ca.pair.cert}",
        f"--service-account-issuer={c.server}",
        f"--service-account-key-file={c.sa.cert}",
        f"--service-account-signing-key-file={c.sa.key}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--kubelet-client-certificate={c.kubelet_client.cert}",
        f"--kubelet-client-key={c.kubelet_client.key}",
        f"--kubelet-certificate-authority={c.ca.pair.cert}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        f"--requestheader-client-ca-file={c.front_proxy_ca.pair.cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={c.front_proxy_client.cert}",
        f"--proxy-client-key-file={c.front_proxy_client.key}",
        "--allow-privileged=true",
        "--profiling=false",
        "--enable-priority-and-fairness=false",
        "--v=1",
        *c.apiserver_args,
    ]


def controller_manager(c: Cluster, kubeconfig: Path) -> list[str]:
    return [
        c.tools("kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={c.sa.key}",
        f"--root-ca-file={c.ca.pair.cert}",
        f"--cluster-signing-cert-file={c.ca.pair.cert}",
        f"--cluster-signing-key-file={c.ca.pair.key}",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--v=1",
        *c.kcm_args,
    ]


def scheduler(c: Cluster, kubeconfig: Path) -> list[str]:
    return [
        c.tools("kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        "--leader-elect=false",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--v=1",
    ]


def kwok(c: Cluster, serving: CertPair, config: Path) -> list[str]:
    return [
        c.tools("kwok"),
        f"--kubeconfig={c.kubeconfig}",
        f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
        "--node-ip=127.0.0.1",
        f"--node-port={c.kwok_port}",
        f"--server-address=127.0.0.1:{c.kwok_port}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
        "--node-lease-duration-seconds=40",
        "--cidr=10.16.0.0/16",
        f"--config={config}",
    ]
