"""The tests' rate-limit clock keeps each test clear of a window's end, and only ever moves ahead."""

from __future__ import annotations

import time

import pytest

from tests.clock import MARGIN_SECONDS, WindowSafeClock, wait_for_a_fresh_minute


def test_waits_only_when_the_margin_would_cross_a_minute() -> None:
    minute = 60.0 * 16_667  # a minute's start
    assert wait_for_a_fresh_minute(5, now=minute + 20) == 0.0  # 40 s left in the minute
    assert wait_for_a_fresh_minute(5, now=minute + 57.5) == pytest.approx(2.55)  # 2.5 s left: wait them out
    assert wait_for_a_fresh_minute(30, now=minute + 30) == 0.0  # exactly the margin left


def test_the_clock_jumps_to_the_next_minute_near_its_end_and_never_back() -> None:
    clock = WindowSafeClock()
    clock.offset = 60 - time.time() % 60 - 1  # one second before a minute ends
    before = clock()
    clock.clear_of_window_end()
    after = clock()
    assert after > before and 60 - after % 60 >= MARGIN_SECONDS
    offset = clock.offset
    clock.clear_of_window_end()  # well inside a minute now: no move
    assert clock.offset == offset
