"""What a running campaign shows (issue 19): a line every 10 s off a terminal, even while no member finishes,
and a bar whose counts fit 80 columns."""

from __future__ import annotations

import io
import time

from contentgen.pipeline import Progress
from contentgen.progress import ProgressPrinter


def test_off_a_terminal_a_line_comes_every_interval_even_before_any_member_is_done():
    out = io.StringIO()
    printer = ProgressPrinter(tty=False, out=out, every_s=0.3)
    p = printer.watch(Progress(total=20))
    try:
        deadline = time.monotonic() + 20
        while out.getvalue().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = out.getvalue().splitlines()
        assert len(lines) >= 2 and all(line.startswith("[contentgen] 0/20 members done") for line in lines[:2])
        p.advance(3, {"requests": 7, "timeouts": 1})
        deadline = time.monotonic() + 20
        while "3/20" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "3/20 members done" in out.getvalue() and "7 calls, 1 timeouts" in out.getvalue()
    finally:
        printer.close()
    n = out.getvalue().count("\n")
    time.sleep(0.8)
    assert out.getvalue().count("\n") == n  # closed: no more lines


def test_the_bar_fits_80_columns_with_every_count():
    printer = ProgressPrinter(tty=True, out=io.StringIO(), width=80, every_s=3600)
    p = Progress(total=2_300_000)
    p.done = 1_234_567
    p.started = time.monotonic() - 3725
    printer._progress = p
    printer.stats = {"requests": 1_300_000, "rate_limited": 12, "timeouts": 3, "cost_usd": 123.45}
    try:
        lines = printer.lines()
    finally:
        printer.close()
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines), lines
    for needle in ("1,234,567/2,300,000 members", "1:02:05 ETA"):
        assert needle in lines[0], lines
    assert lines[1] == "model: 1,300,000 calls, 12 x 429, 3 timeouts, $123.45"
