"""Rate limits count in fixed windows (a minute, a day): a test that counts up to a limit across a window's
end would see the count start again and fail one run in a few hundred. Two ways to stay clear of an end:

* :data:`TEST_CLOCK`, the clock of every rate limiter the tests build in-process. It is real time, moved
  ahead to the start of the next minute whenever a test starts in a minute's last :data:`MARGIN_SECONDS`
  (an autouse fixture in ``conftest.py`` calls :meth:`WindowSafeClock.clear_of_window_end`). Moving ahead
  at a minute's end also clears the day's end, which is one.
* :func:`wait_for_a_fresh_minute`, for limits counted by separate processes on real time: how long to
  sleep so that the next ``margin`` seconds stay within one minute.
"""

from __future__ import annotations

import time

MARGIN_SECONDS = 30.0  # how long a test may take, from its start, to count up to a per-minute limit


def wait_for_a_fresh_minute(margin: float, now: float | None = None) -> float:
    """Seconds to sleep before ``margin`` seconds of counting stay within one minute (0: go now)."""
    left = 60 - (time.time() if now is None else now) % 60
    return 0.0 if left >= margin else left + 0.05


class WindowSafeClock:
    """Real time plus an offset that only grows; see the module's text."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def clear_of_window_end(self, margin: float = MARGIN_SECONDS) -> None:
        self.offset += wait_for_a_fresh_minute(margin, self())


TEST_CLOCK = WindowSafeClock()
