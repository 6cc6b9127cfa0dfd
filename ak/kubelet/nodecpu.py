"""The node's cumulative CPU: its pods' counters summed at one time.

A kubelet's node counter is its root cgroup's, read at one instant. AK's node
has no cgroup: its pods run on remote nodes whose kubelets each measure each
pod at a time of its own, every 10-15 s. metrics-server turns two node samples
into a rate, (cpu₂ - cpu₁) / (t₂ - t₁), so each sample's value must be the one
that held at its time: a value that changes only when the remote stats refresh,
stamped with the time of the scrape, gives rates from mismatched pairs (a
stale value at a new time reads as an idle node, the next refresh as a burst),
and so does a sum of counters read at different times stamped with any one of
them.

So AK keeps each pod's samples as a piecewise-linear curve through the points
its remote kubelet measured and reads every curve at one time ``T``: the
oldest of the pods' latest samples, the latest time at which every running
pod's counter is known. Between two measured points a counter is interpolated
(the kubelet's own ``usageNanoCores`` is the same straight line); after a
pod's last point it is held. ``T`` never goes back and a curve only grows
forwards, so the node's counter never decreases, and the same ``T`` always
carries the same value. A pod that is gone keeps what it used in the node's
counter, as exited processes stay in a cgroup's.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from itertools import pairwise

Point = tuple[float, int]  # (seconds since the epoch, cumulative core-nanoseconds)


@dataclass(frozen=True)
class Sample:
    """One pod's cumulative CPU as its remote kubelet measured it."""

    time: float  # when it was measured, seconds since the epoch
    core_ns: int  # usageCoreNanoSeconds
    start: float | None = None  # the pod's start, where its counter was 0, if known


@dataclass(frozen=True)
class _Curve:
    points: tuple[Point, ...]  # times strictly increasing, values non-decreasing
    offset: int  # what the pod's counter held before it restarted from 0
    last_raw: int  # the last counter value as the remote gave it

    def at(self, t: float) -> int:
        """The counter at ``t``: interpolated between points, held after the last."""
        pts = self.points
        if t >= pts[-1][0]:
            return pts[-1][1]
        if t <= pts[0][0]:
            return pts[0][1]
        for (t0, v0), (t1, v1) in pairwise(pts):
            if t0 <= t <= t1:
                return v0 + int((v1 - v0) * (t - t0) / (t1 - t0))
        raise AssertionError("unreachable: t lies within the points")

    def add(self, s: Sample) -> _Curve:
        if s.time <= self.points[-1][0]:
            return self  # no newer than what we have (a slower concurrent scrape)
        offset = self.offset
        if s.core_ns < self.last_raw:
            offset += self.last_raw  # the counter restarted from 0 (a new pod cgroup)
        return _Curve((*self.points, (s.time, offset + s.core_ns)), offset, s.core_ns)

    def since(self, t: float) -> _Curve:
        """Only the points needed to read the curve at ``t`` or later."""
        keep = next((i for i in range(len(self.points) - 1, -1, -1) if self.points[i][0] <= t), 0)
        return _Curve(self.points[keep:], self.offset, self.last_raw)


def _new_curve(s: Sample) -> _Curve:
    # Its counter was 0 when it started: read between its start and its first
    # sample, a pod that started after T adds nothing at T.
    points: tuple[Point, ...] = ((s.time, s.core_ns),)
    if s.start is not None and s.start < s.time:
        points = ((s.start, 0), *points)
    return _Curve(points, 0, s.core_ns)


@dataclass(frozen=True)
class NodeCPU:
    """The node's counter (``core_ns`` at ``time``) and what it is made of."""

    time: float
    core_ns: int
    curves: Mapping[str, _Curve] = field(default_factory=dict)
    retired: int = 0  # what pods that are gone used


def advance(
    prev: NodeCPU | None, samples: Mapping[str, Sample], alive: Set[str], now: float
) -> NodeCPU:
    """The node's counter after a scrape.

    ``samples`` are the pods' latest measurements by pod key (remote UID),
    ``alive`` the keys of the pods that still exist (with or without stats),
    ``now`` the scrape's time.
    """
    curves = dict(prev.curves) if prev else {}
    for key, s in samples.items():
        curve = curves.get(key)
        curves[key] = _new_curve(s) if curve is None else curve.add(s)
    if samples:
        t = min(curves[k].points[-1][0] for k in samples)
    elif any(k in alive for k in curves):
        # Pods that ran have no stats now (their remote node did not answer):
        # hold, rather than read them as idle.
        t = prev.time if prev else now
    else:
        t = now  # nothing runs: the counter holds at any time
    if prev is not None:
        t = max(t, prev.time)
    retired = prev.retired if prev else 0
    if prev is not None and t == prev.time:
        core_ns = prev.core_ns  # the same time, the same value
    else:
        core_ns = retired + sum(c.at(t) for c in curves.values())
    kept: dict[str, _Curve] = {}
    for key, curve in curves.items():
        if key not in alive and curve.points[-1][0] <= t:
            retired += curve.points[-1][1]  # gone, and read to its end
        else:
            kept[key] = curve.since(t)
    return NodeCPU(t, core_ns, kept, retired)
