"""The Node says whether its kubelet API serves: condition, wake-ups, Events, failures."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from ak.config import Config, NodeSettings
from ak.core import kubelet_status as ks
from ak.core.node import node_object, node_status_patch
from ak.doctor import Check, Doctor
from ak.kubelet.api import KubeletAPI
from ak.kubelet.certs import TLSSettings
from ak.kubelet.health import KubeletAPIHealth, describe
from ak.node.controller import NodeController, NodeSpec, RemoteHealth
from tests.testbed.pki import CertificateAuthority
from tests.unit.fixtures import offline_client

SPEC = NodeSpec("n", {}, False, "127.0.0.1", 10250, "v0", {}, {})
NOW = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)


def _conditions(node: dict[str, object]) -> dict[str, dict[str, str]]:
    status = node["status"]
    assert isinstance(status, dict)
    return {c["type"]: c for c in status["conditions"]}


def _controller(health: KubeletAPIHealth) -> NodeController:
    synced = trio.Event()
    synced.set()
    remote = RemoteHealth()
    remote.set(True, "KubeletReady", "")
    return NodeController(
        offline_client("local"),
        offline_client("remote"),
        SPEC,
        remote,
        synced=synced,
        kubelet_api=health,
    )


def test_statuses() -> None:
    assert (ks.starting().status, ks.starting().unavailable) == ("Unknown", False)
    assert ks.serving(10250) == ks.KubeletAPIStatus(
        "False", "KubeletAPIServing", "the kubelet API serves port 10250"
    )
    pending = ks.certificate_pending("csr-x", "kubernetes.io/kubelet-serving")
    assert (pending.status, pending.reason) == ("True", "ServingCertificatePending")
    assert "`kubectl certificate approve csr-x`" in pending.message
    failed = ks.failed(10250, "OSError: address already in use")
    assert (failed.status, failed.reason) == ("True", "KubeletAPIFailed")
    assert "cannot serve port 10250: OSError: address already in use" in failed.message
    for problem in (pending, failed, ks.certificate_failed("403 Forbidden")):
        assert problem.unavailable
        assert "kubectl logs, exec, attach and port-forward fail" in problem.message


def test_the_condition_is_reported_beside_ready_which_it_leaves_alone() -> None:
    health = KubeletAPIHealth()
    trio.run(health.set, ks.failed(10250, "boom"))
    node = _controller(health).desired()
    conditions = _conditions(node)
    assert conditions["Ready"]["status"] == "True"
    unavailable = conditions["KubeletAPIUnavailable"]
    assert (unavailable["status"], unavailable["reason"]) == ("True", "KubeletAPIFailed")
    assert ks.status_of(node) == ks.failed(10250, "boom")


def test_without_the_condition_status_of_says_none() -> None:
    node = node_object(
        name="n",
        labels={},
        taint=False,
        addresses=[],
        kubelet_port=1,
        version="v0",
        capacity={},
        allocatable={},
        ready=True,
        ready_reason="KubeletReady",
        ready_message="",
        now=NOW,
    )
    assert ks.status_of(node) is None


def test_a_change_is_a_status_patch_and_transition() -> None:
    health = KubeletAPIHealth()
    controller = _controller(health)
    before = controller.desired()
    trio.run(health.set, ks.serving(10250))
    patch = node_status_patch(before, controller.desired()["status"], NOW)
    assert patch is not None
    conditions = {c["type"]: c for c in patch["status"]["conditions"]}
    assert conditions["KubeletAPIUnavailable"]["status"] == "False"
    assert conditions["KubeletAPIUnavailable"]["lastTransitionTime"] == "2026-12-04T17:00:00Z"


def test_a_kubelet_api_change_wakes_the_status_loop() -> None:
    async def main() -> float:
        health = KubeletAPIHealth()
        controller = _controller(health)

        async def later() -> None:
            await trio.sleep(1)
            await health.set(ks.serving(10250))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            await controller._until_changed()
        return trio.current_time()

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == 1


def test_every_problem_reported_is_a_warning_and_the_same_status_no_change() -> None:
    reported: list[tuple[str, str]] = []

    async def report(reason: str, message: str) -> None:
        reported.append((reason, message))

    async def main() -> None:
        health = KubeletAPIHealth(report)
        changed = health.changed
        await health.set(ks.failed(1, "x"))
        assert changed.is_set()
        changed = health.changed
        await health.set(ks.failed(1, "x"))  # a crash loop: counted, not a change
        assert not changed.is_set()
        await health.set(ks.serving(1))
        assert changed.is_set()

    trio.run(main)
    assert [r for r, _ in reported] == ["KubeletAPIFailed", "KubeletAPIFailed"]


def test_describe_unwraps_nursery_groups() -> None:
    error = ExceptionGroup("a", [ExceptionGroup("b", [ValueError("too long")])])
    assert describe(error) == "ValueError: too long"
    assert describe(TimeoutError()) == "TimeoutError"


def test_a_port_that_cannot_be_listened_on_is_reported(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    pair = ca.issue("serving", "system:node:n", orgs=("system:nodes",), server=True)
    reported: list[tuple[str, str]] = []

    async def report(reason: str, message: str) -> None:
        reported.append((reason, message))

    async def main(port: int) -> None:
        health = KubeletAPIHealth(report)
        api = KubeletAPI(
            node_name="n",
            port=port,
            tls=TLSSettings("n", ("127.0.0.1",), str(pair.cert), str(pair.key)),
            local=offline_client("local"),
            remote=offline_client("remote"),
            local_pods=_NoPods(),
            remote_pods=_NoPods(),
            bind_host="127.0.0.1",
            health=health,
        )
        with pytest.raises(BaseExceptionGroup) as raised:
            await api.run()
        assert isinstance(raised.value.exceptions[0], OSError)
        assert health.status.reason == "KubeletAPIFailed"

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        trio.run(main, port)
    [(reason, message)] = reported
    assert reason == "KubeletAPIFailed"
    assert f"cannot serve port {port}: OSError: " in message
    assert "Address already in use" in message


class _NoPods:
    def values(self) -> Iterator[dict[str, Any]]:
        return iter(())

    def get(self, namespace: str, name: str) -> None:
        return None


def _doctor_line(node: dict[str, Any]) -> Check:
    doctor = Doctor(Config(node=NodeSettings(name="n")))
    doctor.kubelet_api(node)
    [check] = doctor.checks
    assert check.name == "kubelet API"
    return check


def _reported(ready: str, api: ks.KubeletAPIStatus | None) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": ready}]
    if api is not None:
        conditions.append(
            {
                "type": ks.CONDITION,
                "status": api.status,
                "reason": api.reason,
                "message": api.message,
            }
        )
    return {"status": {"conditions": conditions}}


def test_doctor_fails_while_the_running_ak_cannot_serve() -> None:
    check = _doctor_line(_reported("True", ks.failed(10250, "ValueError: too long")))
    assert check.ok is False
    assert check.detail.startswith("KubeletAPIFailed: the kubelet API cannot serve port 10250")
    assert "AK's log" in check.fix
    pending = _doctor_line(_reported("True", ks.certificate_pending("csr-1", "s")))
    assert pending.ok is False
    assert "kubectl certificate approve csr-1" in pending.detail
    assert "approve the CSR" in pending.fix


def test_doctor_passes_a_serving_kubelet_api_and_skips_what_is_stale() -> None:
    assert _doctor_line(_reported("True", ks.serving(10250))).ok is True
    assert _doctor_line(_reported("False", ks.starting())).ok is True
    # AK stopped: the node lifecycle controller marked Ready Unknown, the rest is stale.
    stale = _doctor_line(_reported("Unknown", ks.failed(10250, "x")))
    assert (stale.ok, stale.detail) == (True, "not reported by a running AK: not checked")
    assert _doctor_line(_reported("True", None)).ok is True
