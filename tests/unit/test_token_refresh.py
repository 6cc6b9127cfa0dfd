"""When tokens are refreshed: the kubelet's policy, the schedule, and the timer on a fake clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from ak.core.token_refresh import MAX_AGE, RefreshSchedule, refresh_due
from ak.tokens.timer import MAX_SLEEP, RefreshTimer

T0 = 1_800_000_000.0  # some wall-clock instant


# --- refresh_due --------------------------------------------------------------------


def test_default_token_refreshes_at_80_percent() -> None:
    assert refresh_due(T0, 3607, jitter=0) == pytest.approx(T0 + 2885.6)
    # The jitter moves it up to 10 s earlier, never later.
    assert refresh_due(T0, 3607, jitter=0.999) == pytest.approx(T0 + 2885.6 - 9.99)


def test_short_tokens_leave_the_remote_kubelet_time_to_copy_them() -> None:
    # 600 s, the shortest: 3 minutes before expiry rather than the kubelet's 2.
    assert refresh_due(T0, 600, jitter=0) == T0 + 420
    assert refresh_due(T0, 600, jitter=0.5) == T0 + 415
    assert refresh_due(T0, 900, jitter=0) == T0 + 720  # both rules agree
    assert refresh_due(T0, 1000, jitter=0) == T0 + 800  # 80 % is earlier
    # Never before half the lifetime (only reachable for tokens shorter than the API allows).
    assert refresh_due(T0, 300, jitter=0) == T0 + 150


def test_long_tokens_refresh_after_24h() -> None:
    year = 365 * 24 * 3600
    assert refresh_due(T0, year, jitter=0) == T0 + MAX_AGE
    assert refresh_due(T0, year, jitter=0.5) == T0 + MAX_AGE - 5


def test_max_age_caps_the_age_and_shrinks_the_jitter() -> None:
    assert refresh_due(T0, 3607, max_age=20, jitter=0) == T0 + 20
    assert refresh_due(T0, 3607, max_age=20, jitter=0.5) == T0 + 19  # a tenth of 20 s, halved


@pytest.mark.parametrize("jitter", [-0.1, 1.0, 2.0])
def test_jitter_out_of_range(jitter: float) -> None:
    with pytest.raises(ValueError, match="jitter"):
        refresh_due(T0, 600, jitter=jitter)


@pytest.mark.parametrize(("ttl", "max_age"), [(0, MAX_AGE), (-5, MAX_AGE), (600, 0)])
def test_lifetimes_must_be_positive(ttl: float, max_age: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        refresh_due(T0, ttl, max_age=max_age, jitter=0)


def kubelet_requires_refresh(now: float, exp: float, ttl: int, jitter_s: float) -> bool:
    """pkg/kubelet/token/token_manager.go requiresRefresh, transcribed."""
    iat = exp - ttl
    if now > iat + MAX_AGE - jitter_s:
        return True
    return now > exp - (ttl * 20) // 100 - jitter_s


@given(
    ttl=st.integers(min_value=900, max_value=2 * 365 * 24 * 3600),
    jitter=st.floats(min_value=0, max_value=0.999),
    offset=st.floats(min_value=-5, max_value=5),
)
def test_same_moment_as_the_kubelet(ttl: int, jitter: float, offset: float) -> None:
    # With the jitter the kubelet would draw (10 s window; never a tenth of a
    # >= 720 s age), AK refreshes when the kubelet would, up to the kubelet's
    # integer arithmetic on 20 % of the lifetime (< 1 s).
    due = refresh_due(T0, ttl, jitter=jitter)
    jitter_s = jitter * 10
    now = due + offset
    if abs(offset) > 1:
        assert kubelet_requires_refresh(now, T0 + ttl, ttl, jitter_s) == (now > due)


@given(
    ttl=st.integers(min_value=600, max_value=899),
    jitter=st.floats(min_value=0, max_value=0.999),
)
def test_short_tokens_never_later_than_the_kubelet(ttl: int, jitter: float) -> None:
    due = refresh_due(T0, ttl, jitter=jitter)
    assert kubelet_requires_refresh(due + 1, T0 + ttl, ttl, jitter * 10) is False
    assert T0 + ttl - due >= 180


# --- RefreshSchedule -------------------------------------------------------------------


def test_schedule_orders_and_pops_due_keys() -> None:
    s: RefreshSchedule[str] = RefreshSchedule()
    assert s.next_due() is None and s.pop_due(T0) == []
    assert s.set("b", T0 + 20) is True
    assert s.set("a", T0 + 10) is True
    assert s.set("c", T0 + 30) is False
    assert (len(s), s.next_due(), s.due("c")) == (3, T0 + 10, T0 + 30)
    assert s.pop_due(T0 + 9) == []
    assert s.pop_due(T0 + 20) == ["a", "b"]
    assert "a" not in s and "c" in s
    assert s.pop_due(T0 + 100) == ["c"]
    assert len(s) == 0 and s.next_due() is None


def test_schedule_replace_and_discard() -> None:
    s: RefreshSchedule[str] = RefreshSchedule()
    s.set("a", T0 + 10)
    s.set("b", T0 + 20)
    assert s.set("a", T0 + 30) is False  # moved later: b is first now
    assert s.next_due() == T0 + 20
    s.discard("b")
    s.discard("missing")
    assert s.next_due() == T0 + 30
    assert s.pop_due(T0 + 25) == []
    assert s.set("a", T0 + 5) is True
    assert s.pop_due(T0 + 100) == ["a"]  # once, though it was set three times


# --- RefreshTimer on trio's fake clock -----------------------------------------------------


async def test_timer_fires_at_due_times(autojump_clock: trio.testing.MockClock) -> None:
    fired: list[tuple[str, float]] = []
    timer: RefreshTimer[str] = RefreshTimer(
        lambda key: fired.append((key, trio.current_time())), wall=trio.current_time
    )
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timer.run)
        timer.set("late", start + 100)
        timer.set("early", start + 40)
        await trio.sleep(150)
        nursery.cancel_scope.cancel()
    assert fired == [("early", start + 40), ("late", start + 100)]


async def test_new_earlier_entry_wakes_the_sleeping_timer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fired: list[tuple[str, float]] = []
    timer: RefreshTimer[str] = RefreshTimer(
        lambda key: fired.append((key, trio.current_time())), wall=trio.current_time
    )
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timer.run)
        timer.set("a", start + 200)
        await trio.sleep(10)  # the timer now sleeps until +200
        timer.set("b", start + 30)  # a new pod's token, due earlier
        timer.set("c", start + 250)
        timer.cancel("c")
        await trio.sleep(400)
        nursery.cancel_scope.cancel()
    assert fired == [("b", start + 30), ("a", start + 200)]


async def test_idle_timer_does_not_poll(autojump_clock: trio.testing.MockClock) -> None:
    timer: RefreshTimer[str] = RefreshTimer(lambda key: None, wall=trio.current_time)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timer.run)
        await trio.sleep(10 * 24 * 3600)
        assert timer.wakeups == 0
        # A far refresh wakes it only every MAX_SLEEP, to notice wall-clock jumps.
        timer.set("far", trio.current_time() + 10 * MAX_SLEEP)
        await trio.sleep(10 * MAX_SLEEP + 1)
        nursery.cancel_scope.cancel()
    assert 10 <= timer.wakeups <= 12


async def test_timer_with_a_wall_clock_jump(autojump_clock: trio.testing.MockClock) -> None:
    # The wall clock jumps an hour ahead (a suspended VM resumes): the refresh
    # due in the meantime happens at the next MAX_SLEEP wakeup, not an hour late.
    offset = 0.0
    fired: list[float] = []
    timer: RefreshTimer[str] = RefreshTimer(
        lambda key: fired.append(trio.current_time()),
        wall=lambda: trio.current_time() + offset,
    )
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timer.run)
        timer.set("a", start + 3600)
        await trio.sleep(1)
        offset = 3600
        await trio.sleep(MAX_SLEEP + 1)
        nursery.cancel_scope.cancel()
    assert fired and fired[0] <= start + MAX_SLEEP + 1
