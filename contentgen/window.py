"""A streaming window: members enter as slots free, finished members commit in small transactions.

The pipeline hands ``Window.run`` an iterator of work items (members still to
decide, or ints counting members already decided) and an async ``work``
function (plan -> prompt -> generate -> assemble -> gates -> decide for one
member). At most ``slots`` members are in flight; a new one starts the moment
one finishes, so one member's long repair chain never holds the others back.
Finished members collect in a buffer that ``commit`` writes to the run store in
one transaction when ``commit_every`` members are waiting or
``commit_interval_s`` has passed, so a kill loses at most that many decided
members (their model answers are already in the store's cache: redoing them
costs no request).

How the window ends:

* the items run out: every member finishes, the buffer is committed;
* ``pending_types`` (a transport failure): that member stays pending, the rest
  go on;
* ``pause_types`` (provider down, spending limit): no new members start, those
  in flight finish and are committed, ``pause`` holds the reason;
* ``stop()`` (SIGINT/SIGTERM): no new members start, those in flight get
  ``grace_s`` to finish, then are cancelled (they stay pending); a second
  ``stop()`` cancels at once;
* any other exception (the run store failed, an input changed, a systemic
  engine failure): members in flight are cancelled, members already finished
  are committed unless the exception is one of ``no_flush_types``, and the
  exception is raised once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class WindowResult:
    done: int = 0          # members finished and committed by this process
    skipped: int = 0       # members found already decided in the store
    pending: int = 0       # members left pending (transport failure, pause, stop)
    pause: BaseException | None = None
    stopped: str = ""      # the signal name when stop() ended the window
    peak_in_flight: int = 0


class Window:
    def __init__(self, *, slots: int, commit: Callable[[list[Any]], None], commit_every: int = 64,
                 commit_interval_s: float = 1.0, pending_types: tuple[type[BaseException], ...] = (),
                 pause_types: tuple[type[BaseException], ...] = (),
                 no_flush_types: tuple[type[BaseException], ...] = (),
                 on_progress: Callable[[int, WindowResult], None] | None = None, grace_s: float = 5.0) -> None:
        self.slots = max(1, slots)
        self.commit = commit
        self.commit_every = max(1, commit_every)
        self.commit_interval_s = commit_interval_s
        self.pending_types = pending_types
        self.pause_types = pause_types
        self.no_flush_types = no_flush_types
        self.on_progress = on_progress
        self.grace_s = grace_s
        self.result = WindowResult()
        self.in_flight = 0
        self.fatal: BaseException | None = None
        self._buffer: list[Any] = []
        self._last_commit = time.monotonic()
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._cond: asyncio.Condition | None = None
        self._cancel_handle: asyncio.TimerHandle | None = None

    # -- stopping
    def stop(self, why: str = "") -> None:
        """Start no new member; cancel those in flight after ``grace_s`` (at once on a second call)."""
        if self._stopping and why:
            self._cancel_all()
            return
        if why and not self.result.stopped:
            self.result.stopped = why
        self._halt()
        if why and self._cancel_handle is None:
            self._cancel_handle = asyncio.get_running_loop().call_later(self.grace_s, self._cancel_all)

    def _halt(self) -> None:
        self._stopping = True
        if self._cond is not None:
            asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()

    def _cancel_all(self) -> None:
        me = asyncio.current_task()
        for t in list(self._tasks):
            if t is not me:
                t.cancel()

    def _fail(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
        self._halt()
        self._cancel_all()

    # -- committing
    def _flush(self) -> None:
        if not self._buffer:
            self._last_commit = time.monotonic()
            return
        rows, self._buffer = self._buffer, []
        self.commit(rows)
        self._last_commit = time.monotonic()
        self.result.done += len(rows)

    def _maybe_flush(self) -> None:
        if self.fatal is not None:
            return
        if len(self._buffer) >= self.commit_every or time.monotonic() - self._last_commit >= self.commit_interval_s:
            try:
                self._flush()
            except Exception as e:  # the store failed or an input changed: nothing more is committed
                self._fail(e)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval_s)
            self._maybe_flush()

    # -- one member
    async def _one(self, work: Callable[[Any], Awaitable[Any]], item: Any) -> None:
        n_pending = 0
        try:
            row = await work(item)
        except asyncio.CancelledError:
            n_pending = 1  # stopped: the member stays pending; its answers so far are in the store's cache
        except self.pending_types:
            n_pending = 1
        except self.pause_types as e:
            n_pending = 1
            if self.result.pause is None:
                self.result.pause = e
            self._halt()
        except Exception as e:
            n_pending = 1
            self._fail(e)
        else:
            self._buffer.append(row)
            self._maybe_flush()
        finally:
            self.in_flight -= 1
            self.result.pending += n_pending
            if self.on_progress:
                self.on_progress(1, self.result)
            assert self._cond is not None
            async with self._cond:
                self._cond.notify_all()

    # -- the window
    async def run(self, items: Iterator[Any], work: Callable[[Any], Awaitable[Any]]) -> WindowResult:
        self._cond = asyncio.Condition()
        ticker = asyncio.create_task(self._ticker())
        admitted = 0
        try:
            for item in items:
                if isinstance(item, int):  # already decided in an earlier process
                    self.result.skipped += item
                    if self.on_progress:
                        self.on_progress(item, self.result)
                    continue
                async with self._cond:
                    await self._cond.wait_for(lambda: self.in_flight < self.slots or self._stopping)
                if self._stopping:
                    break
                self.in_flight += 1
                self.result.peak_in_flight = max(self.result.peak_in_flight, self.in_flight)
                task = asyncio.create_task(self._one(work, item))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                admitted += 1
                if admitted % 64 == 0:
                    await asyncio.sleep(0)  # let answers in while the window fills
        except Exception as e:  # reading the input failed: members in flight finish, then it is raised
            if self.fatal is None:
                self.fatal = e
            self._stopping = True
        finally:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            if self._cancel_handle is not None:
                self._cancel_handle.cancel()
        if self.fatal is None or not isinstance(self.fatal, self.no_flush_types):
            try:
                self._flush()
            except Exception as e:
                if self.fatal is None:
                    self.fatal = e
        if self.fatal is not None:
            raise self.fatal
        return self.result
