"""One browser action through Hutch's toolset, next to Playwright doing the same thing alone.

In one run, one Chromium, interleaved round by round:

- Playwright alone: ``page.goto(url)`` then a JPEG screenshot (what any agent browser must at least do);
- Playwright doing all the work the toolset does: the same, plus reading the page as numbered text;
- Hutch's toolset: ``AgentBrowser.act("open", url=...)`` — the context's egress proxy (each request
  checked, its address pinned), the page read as numbered text, the screenshot, the file written under the
  data directory and its row inserted in PostgreSQL;
- the same three for a click on the page's link (a navigation).

Hutch's overhead is the toolset's time minus Playwright doing the same work. `--rounds N` (default 60;
`--quick` or `BENCH_QUICK=1`: 20).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

from browser_setup import bench_setup, percentile
from common import print_table
from hutch.browser.page_text import READ_PAGE_SCRIPT
from hutch.browser.pool import SCREENSHOT_QUALITY, VIEWPORT


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


async def main(rounds: int) -> None:
    async with bench_setup() as bench:
        agent = bench.browser("actions")
        await agent.act("open", None, url=f"{bench.site}/p/0")  # starts Chromium, opens the context
        browser = await bench.pool._chromium()
        context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        page = await context.new_page()
        await page.goto(f"{bench.site}/p/0")

        async def plain_open(n: int) -> None:
            await page.goto(f"{bench.site}/p/{n}", wait_until="load")
            await page.screenshot(type="jpeg", quality=SCREENSHOT_QUALITY)

        async def full_open(n: int) -> None:
            await page.goto(f"{bench.site}/p/{n}", wait_until="load")
            await page.evaluate(READ_PAGE_SCRIPT)
            await page.screenshot(type="jpeg", quality=SCREENSHOT_QUALITY)

        async def plain_click() -> None:
            await page.click("a")
            await page.wait_for_load_state("load")
            await page.screenshot(type="jpeg", quality=SCREENSHOT_QUALITY)

        async def full_click() -> None:
            await page.click("a")
            await page.wait_for_load_state("load")
            await page.evaluate(READ_PAGE_SCRIPT)
            await page.screenshot(type="jpeg", quality=SCREENSHOT_QUALITY)

        times: dict[str, list[float]] = {k: [] for k in ("po", "fo", "ho", "pc", "fc", "hc")}
        for n in range(1, rounds + 1):
            url = f"{bench.site}/p/{n}"
            times["po"].append(await timed(lambda n=n: plain_open(n)))  # type: ignore[misc]
            times["fo"].append(await timed(lambda n=n: full_open(n)))  # type: ignore[misc]
            times["ho"].append(await timed(lambda url=url: agent.act("open", None, url=url)))  # type: ignore[misc]
            # The link is element [3] of Hutch's reading (the search field and its button come first).
            times["pc"].append(await timed(plain_click))
            times["fc"].append(await timed(full_click))
            times["hc"].append(await timed(lambda: agent.act("click", None, element=3)))
        await context.close()

    def row(name: str, key: str, against: str | None = None) -> list[object]:
        values = times[key]
        p50 = statistics.median(values)
        extra = "" if against is None else f"{p50 - statistics.median(times[against]):+.1f}"
        return [name, p50, percentile(values, 99), extra]

    print_table(
        f"One browser action, {rounds} rounds (ms); overhead: Hutch's median minus Playwright doing the "
        "same work",
        ["action", "p50", "p99", "overhead p50"],
        [
            row("open: Playwright goto + screenshot", "po"),
            row("open: Playwright goto + read + screenshot", "fo"),
            row("open: Hutch toolset (proxy, read, screenshot, file, row)", "ho", "fo"),
            row("click: Playwright click + screenshot", "pc"),
            row("click: Playwright click + read + screenshot", "fc"),
            row("click: Hutch toolset", "hc", "fc"),
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    quick = arguments.quick or os.environ.get("BENCH_QUICK") == "1"
    asyncio.run(main(20 if quick else arguments.rounds))
