"""Fixtures that start real Kubernetes control planes (see ak/testbed)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

import pytest

from ak.testbed.cluster import Cluster, Testbed


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
    return testbed.cluster("local")


@pytest.fixture(scope="session")
def remote_cluster(testbed: Testbed) -> Cluster:
    return testbed.cluster("remote", kwok_nodes=3)


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
        report.sections.append(("testbed", f"files and logs under {tb.root}\n{where}"))
    return report
