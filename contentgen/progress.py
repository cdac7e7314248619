"""What a running campaign shows: a progress bar on a terminal, a log line every 10 seconds otherwise.

``ProgressPrinter`` is the ``Progress.on_update`` callback of a run. The pipeline
calls it whenever members are done; a ticker thread also prints (off a terminal)
or refreshes (on one) every ``every_s`` seconds in between, so a slow model never
leaves the screen silent. On a terminal the bar takes two lines, so at 80 columns
nothing is cut: members done/total, the bar, rate, elapsed and ETA on the first;
the model's calls, 429s, timeouts and cost on the second.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any


def _clock(s: float | None) -> str:
    if s is None:
        return "-:--"
    s = int(s)
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


def describe(stats: dict[str, Any]) -> str:
    """The model side in a few words: calls, 429s, timeouts, cost, pending."""
    parts = [f"{stats.get('requests', 0):,} calls"]
    if stats.get("rate_limited"):
        parts.append(f"{stats['rate_limited']} x 429")
    if stats.get("timeouts"):
        parts.append(f"{stats['timeouts']} timeouts")
    cost = stats.get("cost_usd")
    if cost:
        parts.append(f"${cost:,.2f}" if cost >= 1 else f"${cost:.4f}")
    if stats.get("pending"):
        parts.append(f"{stats['pending']} pending")
    return ", ".join(parts)


def _two_line_bar_class():
    from rich.progress import Progress as Bar
    from rich.text import Text

    class TwoLineBar(Bar):
        """The bar on one line (members, rate, time), the model's counts on the next: 80 columns hold both."""

        info = ""

        def get_renderables(self):
            yield self.make_tasks_table(self.tasks)
            yield Text(self.info, no_wrap=True, overflow="ellipsis")

    return TwoLineBar


def _TwoLineBar(*args: Any, **kwargs: Any) -> Any:
    return _two_line_bar_class()(*args, **kwargs)


class ProgressPrinter:
    def __init__(self, *, tty: bool | None = None, out: IO[str] | None = None, every_s: float = 10.0,
                 width: int | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.every_s = every_s
        self.width = width
        self.done = 0
        self.total: int | None = None
        self.started = time.monotonic()
        self.stats: dict[str, Any] = {}
        self._last = 0.0
        self._lock = threading.Lock()
        self._draw_lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._bar: Any = None
        self._task: Any = None
        self._progress: Any = None

    def watch(self, progress: Any) -> Any:
        """Follow ``progress`` (a ``pipeline.Progress``) from now on: its counts are read live, and lines
        (or the bar) come every ``every_s`` seconds even before the first members are done."""
        self._progress = progress
        progress.on_update = self
        self._last = time.monotonic()
        self._start_ticker()
        return progress

    def _state(self) -> tuple[int, int | None, dict[str, Any], float]:
        with self._lock:
            p = self._progress
            if p is not None:
                self.done, self.total, self.started = p.done, p.total, p.started
            return self.done, self.total, dict(self.stats), time.monotonic() - self.started

    # -- what the run reports
    def __call__(self, p: Any, stats: dict[str, Any]) -> None:
        with self._lock:
            self.done, self.total, self.started = p.done, p.total, p.started
            if stats:
                self.stats = {**self.stats, **stats}
        finished = self.total is not None and self.done >= self.total
        if self.tty:
            self._draw()
            if finished:
                self.close()
        elif finished or time.monotonic() - self._last >= self.every_s:
            self.line()

    # -- off a terminal: one line
    def text(self) -> str:
        done, total, stats, el = self._state()
        rate = done / el if el > 0 else 0.0
        eta = f", ETA {_clock((total - done) / rate)}" if total and rate > 0 and done < total else ""
        of = f"/{total}" if total else ""
        return (f"[contentgen] {done}{of} members done, {rate:.2f}/s, {_clock(el)} elapsed{eta}, "
                f"{describe(stats)}")

    def line(self) -> None:
        self._last = time.monotonic()
        print(self.text(), file=self.out, flush=True)

    # -- on a terminal: a bar that fits 80 columns
    def _columns(self):
        from rich.progress import BarColumn, TextColumn

        return (TextColumn("{task.fields[counts]} members"), BarColumn(bar_width=None),
                TextColumn("{task.fields[rate]}/s {task.fields[elapsed]} ETA {task.fields[eta]}"))

    def _draw(self) -> None:
        with self._draw_lock:
            self._draw_locked()

    def _draw_locked(self) -> None:
        from rich.console import Console

        if self._stop.is_set():
            return
        done, total, stats, el = self._state()
        rate = done / el if el > 0 else 0.0
        fields = {"counts": f"{done:,}/{total:,}" if total is not None else f"{done:,}", "rate": f"{rate:.2f}",
                  "elapsed": _clock(el), "eta": _clock((total - done) / rate) if total and rate > 0 else "-:--"}
        if self._bar is None:
            console = Console(file=self.out, width=self.width, force_terminal=self.tty or None)
            self._bar = _TwoLineBar(*self._columns(), console=console, transient=True, expand=True)
            self._bar.info = "model: " + describe(stats)
            self._task = self._bar.add_task("run", total=total, completed=done, **fields)
            self._bar.start()
        self._bar.info = "model: " + describe(stats)
        self._bar.update(self._task, completed=done, total=total, **fields)

    def lines(self) -> list[str]:
        """The bar's lines as they would be drawn now (for tests and for the curious)."""
        from rich.console import Console

        self._draw()
        console = Console(file=__import__("io").StringIO(), width=self.width or 80, record=True,
                          force_terminal=True)
        for r in self._bar.get_renderables():
            console.print(r)
        return [line for line in console.export_text().splitlines() if line.strip()]

    # -- between updates
    def _start_ticker(self) -> None:
        if self._ticker is not None:
            return

        def tick() -> None:
            while not self._stop.wait(min(self.every_s, 1.0)):
                if self.tty:
                    self._draw()
                elif time.monotonic() - self._last >= self.every_s - 0.05:
                    self.line()

        self._ticker = threading.Thread(target=tick, name="contentgen-progress", daemon=True)
        self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        with self._draw_lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
