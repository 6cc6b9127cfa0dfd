"""Local pod addresses: parsing the range, picking, keeping and freeing addresses,
and which ports a pod is served on."""

from __future__ import annotations

import ipaddress

import pytest

from ak.core.pod_addresses import (
    allocate,
    in_range,
    parse_range,
    proxied_ports,
    with_address,
)
from ak.proxy.addresses import PodAddresses

NET = parse_range("10.250.3.0/24")


def _pod(name: str, uid: str, ip: str | None = None, **spec: object) -> dict[str, object]:
    status = {"podIP": ip} if ip else {}
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": uid, "labels": {"app": name}},
        "spec": {"containers": [{"name": "c"}], **spec},
        "status": status,
    }


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("10.250.0.0/33", "CIDR"),
        ("10.250.0.1/24", "CIDR"),  # host bits set: surely a typo for the network
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("10.0.0.0/31", "fewer than"),
        ("not-a-network", "CIDR"),
    ],
)
def test_ranges_endpoints_cannot_use_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_range(text)


def test_network_and_broadcast_addresses_are_never_given() -> None:
    net = parse_range("10.9.9.0/30")  # usable: .1 and .2
    assert not in_range("10.9.9.0", net)
    assert not in_range("10.9.9.3", net)
    assert in_range("10.9.9.1", net) and in_range("10.9.9.2", net)
    assert not in_range("10.9.8.1", net)
    assert not in_range("fd00::1", net)
    assert not in_range("", net) and not in_range(None, net)
    got = {allocate(f"uid-{i}", net, set()) for i in range(50)}
    assert got == {"10.9.9.1", "10.9.9.2"}


def test_allocation_follows_the_uid_and_skips_used_addresses() -> None:
    first = allocate("uid-a", NET, set())
    assert first is not None and in_range(first, NET)
    assert allocate("uid-a", NET, set()) == first  # a second replica agrees
    second = allocate("uid-a", NET, {first})
    assert second is not None and second != first
    full = {str(ipaddress.ip_address(int(NET.network_address) + i)) for i in range(1, 255)}
    assert allocate("uid-a", NET, full) is None


def test_a_pod_keeps_its_address_and_a_new_incarnation_gets_its_own() -> None:
    addresses = PodAddresses(NET)
    a = addresses.address(("ns", "web"), _pod("web", "uid-1"))
    assert a is not None
    assert addresses.address(("ns", "web"), _pod("web", "uid-1")) == a
    b = addresses.address(("ns", "web"), _pod("web", "uid-2"))
    assert b is not None
    # The old incarnation's address was freed when the new one took the name.
    assert addresses.held(("ns", "web")) == b
    addresses.release(("ns", "web"))
    assert addresses.held(("ns", "web")) is None


def test_a_restarted_ak_keeps_the_addresses_local_statuses_show() -> None:
    addresses = PodAddresses(NET)
    taken = allocate("uid-new", NET, set())
    assert taken is not None
    # An existing pod already holds the address the new pod's UID would pick.
    addresses.adopt(_pod("old", "uid-old", taken))
    fresh = addresses.address(("ns", "new"), _pod("new", "uid-new"))
    assert fresh is not None and fresh != taken
    assert addresses.address(("ns", "old"), _pod("old", "uid-old", taken)) == taken
    # An address outside the range (the remote IP, from before the range was set)
    # is not adopted: the pod gets one of the range.
    outside = addresses.address(("ns", "legacy"), _pod("legacy", "uid-l", "10.244.0.7"))
    assert outside is not None and in_range(outside, NET)


def test_two_pods_showing_the_same_address_do_not_share_it() -> None:
    addresses = PodAddresses(NET)
    addresses.adopt(_pod("a", "uid-a", "10.250.3.9"))
    addresses.adopt(_pod("b", "uid-b", "10.250.3.9"))
    assert addresses.held(("ns", "a")) == "10.250.3.9"
    b = addresses.address(("ns", "b"), _pod("b", "uid-b", "10.250.3.9"))
    assert b is not None and b != "10.250.3.9"


def test_the_local_address_replaces_the_remote_ip_once_there_is_one() -> None:
    assert with_address({"phase": "Pending"}, "10.250.3.4") == {"phase": "Pending"}
    status = {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}]}
    assert with_address(status, "10.250.3.4") == {
        "phase": "Running",
        "podIP": "10.250.3.4",
        "podIPs": [{"ip": "10.250.3.4"}],
    }


def _service(selector: dict[str, str], *ports: dict[str, object]) -> dict[str, object]:
    return {
        "metadata": {"namespace": "ns", "name": "s"},
        "spec": {"selector": selector, "ports": list(ports)},
    }


def test_ports_are_the_declared_ones_and_the_targets_of_selecting_services() -> None:
    pod = _pod(
        "web",
        "u",
        containers=[
            {
                "name": "c",
                "ports": [
                    {"name": "http", "containerPort": 8080},
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                ],
            }
        ],
    )
    services = [
        _service({"app": "web"}, {"port": 443, "targetPort": 8443}),
        _service({"app": "web"}, {"port": 80, "targetPort": "http"}),
        _service({"app": "web"}, {"port": 9000}),  # targetPort defaults to port
        _service({"app": "web"}, {"port": 81, "targetPort": "missing"}),
        _service({"app": "web"}, {"port": 5353, "protocol": "UDP"}),
        _service({"app": "other"}, {"port": 7000}),
        _service({}, {"port": 7001}),  # selector-less: picks nothing
    ]
    assert proxied_ports(pod, services) == {8080, 8443, 9000}
