"""What the testbed removes when its kube-router stops (tests.testbed.kuberouter).

The rules are lines of ``iptables -S`` as kube-router v2.10.0 and kube-proxy
left them side by side in a sandbox (trimmed): only kube-router's chains, and
the jumps into them, may go.
"""

from __future__ import annotations

from tests.testbed.kuberouter import cleanup_commands

RULES = r"""-P INPUT ACCEPT
-P FORWARD ACCEPT
-N KUBE-FORWARD
-N KUBE-NWPLCY-COMMON
-N KUBE-NWPLCY-ONTLRRETFYMSBUTS
-N KUBE-POD-FW-5B7AV45X74PLABEL
-N KUBE-ROUTER-FORWARD
-N KUBE-ROUTER-INPUT
-N KUBE-SERVICES
-A INPUT -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-INPUT
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-NWPLCY-COMMON -m comment --comment "\"rule to drop invalid state for pod\"" -m conntrack --ctstate INVALID -j DROP
-A KUBE-POD-FW-5B7AV45X74PLABEL -d 10.244.0.2/32 -m comment --comment "rule to permit the traffic traffic to pods when source is the pod\'s local node" -m addrtype --src-type LOCAL -j ACCEPT
-A KUBE-POD-FW-5B7AV45X74PLABEL -m comment --comment "run through nw policy np" -j KUBE-NWPLCY-ONTLRRETFYMSBUTS
-A KUBE-ROUTER-FORWARD -d 10.244.0.2/32 -m physdev --physdev-is-bridged -j KUBE-POD-FW-5B7AV45X74PLABEL
-A KUBE-SERVICES -d 10.0.0.1/32 -p tcp -m comment --comment "default/kubernetes:https has no endpoints" -m tcp --dport 443 -j REJECT --reject-with icmp-port-unreachable
"""  # noqa: E501

OURS = [
    "KUBE-NWPLCY-COMMON",
    "KUBE-NWPLCY-ONTLRRETFYMSBUTS",
    "KUBE-POD-FW-5B7AV45X74PLABEL",
    "KUBE-ROUTER-FORWARD",
    "KUBE-ROUTER-INPUT",
]


def test_jumps_into_kube_router_go_first_then_its_chains_are_flushed_and_deleted() -> None:
    assert cleanup_commands(RULES) == [
        ["-D", "INPUT", "-m", "comment", "--comment", "kube-router netpol - 4IA2OSFRMVNDXBVV",
         "-j", "KUBE-ROUTER-INPUT"],
        ["-D", "FORWARD", "-m", "comment", "--comment", "kube-router netpol - TEMCG2JMHZYE7H7T",
         "-j", "KUBE-ROUTER-FORWARD"],
        *(["-F", c] for c in OURS),
        *(["-X", c] for c in OURS),
    ]  # fmt: skip


def test_nothing_of_kube_router_means_nothing_to_do() -> None:
    others = "\n".join(line for line in RULES.splitlines() if "KUBE-ROUTER" not in line and
                       "KUBE-NWPLCY" not in line and "KUBE-POD-FW" not in line)  # fmt: skip
    assert "KUBE-SERVICES" in others
    assert cleanup_commands(others) == []
