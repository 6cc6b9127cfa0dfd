"""Fixtures that start real Kubernetes control planes (see tests/testbed)."""

from __future__ import annotations

import gc
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from hypothesis import settings

from ak.core.labels import LABEL_NODE
from ak.core.names import node_label_value, remote_namespace
from tests.testbed import realnode, sandbox
from tests.testbed.akproc import AKProcess, real_node_args
from tests.testbed.cluster import Cluster
from tests.testbed.localpath import LocalPath
from tests.testbed.testbed import Testbed

# No per-example deadline: hypothesis' 200 ms default is a timed assertion, and on
# a loaded 2-core machine (CI, parallel sandboxes) it fails examples that are right.
settings.register_profile("ak", deadline=None)
settings.load_profile("ak")

# The InternalIP that ``ak_node`` advertises. Loopback unless the session runs in
# a network namespace of its own (tests/cluster/test_node_proxy.py starts one).
NODE_IP = os.environ.get("AK_TEST_NODE_IP", "127.0.0.1")


@dataclass
class AKNode:
    """A running AK and the local namespace a test works in."""

    ak: AKProcess
    namespace: str

    @property
    def name(self) -> str:
        return self.ak.node_name

    @property
    def remote_namespace(self) -> str:
        return remote_namespace(self.ak.node_name, self.namespace)


@pytest.fixture(scope="session")
def testbed() -> Iterator[Testbed]:
    # No skip when the binaries can't be built: Testbed raises and says why.
    tb = Testbed()
    try:
        yield tb
    finally:
        tb.close()


@pytest.fixture(scope="session")
def local_cluster(testbed: Testbed) -> Cluster:
    # The local API server calls webhooks at their endpoints' addresses, standing
    # in for kube-proxy on a control-plane host (which routes the Service's
    # ClusterIP to the same addresses).
    # HPAs are synced every 5 s instead of 15 (tests/cluster/test_real_metrics.py).
    return testbed.cluster(
        "local",
        apiserver_args=["--enable-aggregator-routing=true"],
        kcm_args=["--horizontal-pod-autoscaler-sync-period=5s"],
    )


@pytest.fixture(scope="session")
def remote_cluster(testbed: Testbed) -> Cluster:
    # As the local one for HPAs and aggregated APIs: test_real_metrics.py runs
    # metrics-server and an HPA directly on the remote real node as a baseline.
    return testbed.cluster(
        "remote",
        kwok_nodes=3,
        apiserver_args=["--enable-aggregator-routing=true"],
        kcm_args=["--horizontal-pod-autoscaler-sync-period=5s"],
    )


ClusterFactory = Callable[..., Cluster]


@pytest.fixture
def cluster_factory(testbed: Testbed) -> Iterator[ClusterFactory]:
    """Extra clusters for one test (many-to-one setups); stopped when it ends."""
    made: list[Cluster] = []

    def make(name: str, **kwargs: object) -> Cluster:
        c = testbed.cluster(name, **kwargs)  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Point a failing real-cluster test at the clusters' files and component logs."""
    report = yield
    tb = getattr(item, "funcargs", {}).get("testbed")
    if report.failed and isinstance(tb, Testbed):
        where = "\n".join(c.describe() for c in tb.clusters)
        args = getattr(item, "funcargs", {})
        for node in args.values():
            if isinstance(node, AKNode):
                where += "\n" + node.ak.describe()
        report.sections.append(("testbed", f"files and logs under {tb.root}\n{where}"))
    return report


@pytest.fixture
def ak_node(
    request: pytest.FixtureRequest, local_cluster: Cluster, remote_cluster: Cluster
) -> Iterator[AKNode]:
    """AK running as its own node between the session clusters, in a fresh local namespace."""
    suffix = uuid.uuid4().hex[:5]
    node = AKNode(
        AKProcess(local_cluster, remote_cluster, f"ak-{suffix}", node_ip=NODE_IP), f"t-{suffix}"
    )
    with node_running(node):
        yield node


@pytest.fixture(scope="session")
def remote_real_node(remote_cluster: Cluster) -> realnode.RealNode:
    """A kubelet + containerd node in the remote cluster, beside its kwok nodes.

    Tainted, so only pods placed there on purpose (``ak_real``) run on it. Fails,
    never skips, outside the sandbox that build/test.sh runs the tests in."""
    return remote_cluster.add_real_node("real-remote")


@pytest.fixture(scope="session")
def remote_local_path(
    remote_cluster: Cluster, remote_real_node: realnode.RealNode
) -> Iterator[LocalPath]:
    """Real dynamic provisioning on the remote cluster: rancher's
    local-path-provisioner (``tests.testbed.localpath``) for ``remote_real_node``,
    with its StorageClasses ``local-path`` (the remote's default; reclaim
    Delete) and ``local-path-retain``, both WaitForFirstConsumer. Started on
    first use, once per session."""
    with LocalPath(remote_cluster, [remote_real_node]) as provisioner:
        yield provisioner


# The placement (label and taint value) of ``remote_netpol_node``.
NETPOL = "netpol"


@pytest.fixture(scope="session")
def remote_netpol_node(remote_cluster: Cluster) -> realnode.RealNode:
    """A second real node in the remote cluster, whose pods' NetworkPolicies are
    enforced: kube-router's network-policy controller runs for it
    (``tests.testbed.kuberouter``). Labelled and tainted ``ak-testbed/real-node=netpol``,
    so only pods asking for it land there (``ak_netpol``; or ``nodeName`` plus
    ``realnode.toleration_for(NETPOL)``), and pods on ``remote_real_node`` stay
    unfiltered whatever ran before. Started on first use, once per session."""
    return remote_cluster.add_real_node("real-netpol", placement=NETPOL, network_policy=True)


@contextmanager
def ak_on_real_node(
    local: Cluster,
    remote: Cluster,
    prefix: str,
    *,
    placement: str = realnode.PLACEMENT,
    extra_args: tuple[str, ...] = (),
    metrics: bool = False,
) -> Iterator[AKNode]:
    """AK between ``local`` and ``remote`` whose pods run in real containers on
    the remote real node labelled ``placement``, in a fresh local namespace
    ``<prefix>-<suffix>``; its node address is the sandbox's, so the API
    server's node proxy reaches it too."""
    suffix = uuid.uuid4().hex[:5]
    args = [*real_node_args(local, placement), *extra_args]
    ak = AKProcess(
        local,
        remote,
        f"ak-{suffix}",
        node_ip=sandbox.HOST_IP,
        extra_args=args,
        metrics=metrics,
    )
    with node_running(AKNode(ak, f"{prefix}-{suffix}")) as node:
        yield node


@pytest.fixture
def ak_real(
    local_cluster: Cluster, remote_cluster: Cluster, remote_real_node: realnode.RealNode
) -> Iterator[AKNode]:
    """AK whose pods run in real containers on ``remote_real_node``."""
    with ak_on_real_node(local_cluster, remote_cluster, "r") as node:
        yield node


@pytest.fixture
def ak_netpol(
    local_cluster: Cluster, remote_cluster: Cluster, remote_netpol_node: realnode.RealNode
) -> Iterator[AKNode]:
    """``ak_real`` whose pods run on ``remote_netpol_node``, where the
    NetworkPolicies of their remote namespaces are enforced."""
    with ak_on_real_node(local_cluster, remote_cluster, "n", placement=NETPOL) as node:
        yield node


@pytest.fixture
def ak_real_addressed(
    local_cluster: Cluster, remote_cluster: Cluster, remote_real_node: realnode.RealNode
) -> Iterator[AKNode]:
    """``ak_real`` whose pods get local addresses (``--pod-address-range``): a /24
    of the sandbox's pod address range of its own, and its metrics served."""
    third = uuid.uuid4().int % 250 + 1
    extra = (f"--pod-address-range=10.250.{third}.0/24",)
    with ak_on_real_node(
        local_cluster, remote_cluster, "a", extra_args=extra, metrics=True
    ) as node:
        yield node


@contextmanager
def node_running(node: AKNode) -> Iterator[AKNode]:
    """Its namespace created and AK started, until its node is Ready; then
    AK stopped, and its namespace and Node deleted (without waiting)."""
    local = node.ak.local
    local.kubectl("create", "namespace", node.namespace)
    node.ak.start()
    try:
        wait_for_node_ready(node.ak)
        yield node
    finally:
        node.ak.stop()
        local.kubectl("delete", "namespace", node.namespace, "--wait=false", check=False)
        local.kubectl("delete", "node", node.ak.node_name, "--wait=false", check=False)
        # With AK stopped nothing deletes the node's remote pods: a test's real
        # containers (a busy loop among them) would run, and take the CPU, for
        # the rest of the session.
        node.ak.remote.kubectl(
            "delete",
            "namespace",
            "-l",
            f"{LABEL_NODE}={node_label_value(node.ak.node_name)}",
            "--wait=false",
            check=False,
        )


def wait_for_node_ready(ak: AKProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ak.node_ready():
        if ak.proc is not None and not ak.proc.alive():
            raise RuntimeError(
                f"AK exited {ak.proc.popen.returncode}; {ak.describe()}:\n{ak.proc.tail()}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {ak.node_name} not Ready after {timeout}s; {ak.describe()}")
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """An unclosed socket or file warns when the GC frees it: collect after each
    cluster test, so the warning fails the test that leaked it, not whichever
    runs next. (Unit tests that open sockets collect themselves; collecting
    after each of the hundreds of them would double their time.)"""
    yield
    if request.node.get_closest_marker("cluster") is not None:
        gc.collect()
