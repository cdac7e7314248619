"""Request and token budgets for one provider: two token buckets, a shared pause,
and feedback from the provider's ``x-ratelimit-*`` headers.

The buckets pace requests at ``headroom`` (94%) of the configured RPM/TPM with a
small burst (``burst_s`` seconds of refill), because providers enforce their
per-minute limits continuously: a bucket that saved up a whole minute would
spend it in one burst and collect 429s. A request whose token estimate exceeds
the bucket's capacity may still start when the bucket is full; the bucket then
goes into debt, so the long-run rate stays within the limit.

Token estimates are taken before a call (``acquire``: ≈ characters/4 of the
messages + max_tokens) and corrected from the response's ``usage`` after it
(``settle``). Because most answers use far fewer tokens than ``max_tokens``, the
bucket charges the estimate times a learned ratio (a moving average of
actual/estimate, starting at 1) and settles the difference either way; without
that, in-flight over-reservations starve the bucket and only ~60% of a TPM
limit gets used. ``observe`` reads the provider's
remaining-requests/-tokens headers and never lets the local view be more
optimistic than the provider's; when the provider says nothing is left, every
caller waits until one unit has been replenished. ``pause_for`` (a 429 with
``Retry-After``) holds every caller, not just the one that was refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Mapping

from .retry import header

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None) -> float | None:
    """``x-ratelimit-reset-*`` values: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1.5s"`` or a bare number of seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = header(headers, name)
    if raw is None:
        return None
    try:
        return int(float(raw))
    except ValueError:
        return None


class _Bucket:
    __slots__ = ("rate", "capacity", "level")

    def __init__(self, per_minute: int, headroom: float, burst_s: float, min_capacity: float) -> None:
        self.rate = per_minute * headroom / 60.0            # units per second
        self.capacity = max(min_capacity, self.rate * burst_s)
        self.level = 0.0                     # no initial burst: the last window may be spent already

    def refill(self, dt: float) -> None:
        if self.level < self.capacity:        # a settled refund may leave it above; never cut that
            self.level = min(self.capacity, self.level + self.rate * dt)

    def wait_for(self, need: float) -> float:
        """Seconds until ``need`` (capped at capacity) is available; 0 if it is."""
        need = min(need, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate


class RateBudget:
    """Paces calls to a provider. Without rpm/tpm it only applies pauses and header feedback."""

    shared = False

    def __init__(self, rpm: int | None = None, tpm: int | None = None, *, headroom: float = 0.99,
                 burst_s: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.requests = _Bucket(rpm, headroom, burst_s, 1.0) if rpm else None
        self.tokens = _Bucket(tpm, headroom, burst_s, 1.0) if tpm else None
        self._last = clock()
        self._paused_until = 0.0
        self.ratio = 1.0                      # learned actual/estimated tokens
        self._samples = 0
        self._lock = asyncio.Lock()           # FIFO: callers start in arrival order
        self.waited_s = 0.0                   # total time callers spent waiting here

    def _refill(self) -> float:
        now = self._clock()
        dt = now - self._last
        self._last = now
        if dt > 0:
            for b in (self.requests, self.tokens):
                if b is not None:
                    b.refill(dt)
        return now

    def _txn(self) -> contextlib.AbstractContextManager[None]:
        """Where the bucket state lives: this process (no-op) or a shared file (``SqliteSharedBudget``)."""
        return contextlib.nullcontext()

    async def acquire(self, est_tokens: int) -> int:
        """Wait until one request and its tokens may be spent, spend them; returns the tokens charged."""
        charge = max(1, round(est_tokens * self.ratio)) if self.tokens is not None else est_tokens
        if self.requests is None and self.tokens is None and not self.shared and self._clock() >= self._paused_until:
            return charge
        async with self._lock:
            while True:
                with self._txn():
                    now = self._refill()
                    wait = self._paused_until - now
                    if self.requests is not None:
                        wait = max(wait, self.requests.wait_for(1.0))
                    if self.tokens is not None:
                        wait = max(wait, self.tokens.wait_for(charge))
                    if wait <= 0:
                        if self.requests is not None:
                            self.requests.level -= 1.0
                        if self.tokens is not None:
                            self.tokens.level -= charge
                if wait <= 0:
                    break
                self.waited_s += wait
                await asyncio.sleep(wait)
        return charge

    def settle(self, est_tokens: int, actual_tokens: int, charged: int | None = None) -> None:
        """Correct a charge once the provider reported usage (refund or extra debt) and learn the ratio."""
        if self.tokens is None:
            return
        charged = est_tokens if charged is None else charged
        if est_tokens > 0:
            # the mean of the first answers, then a moving average: a new client stops over-charging quickly
            self._samples += 1
            alpha = max(0.2, 1.0 / self._samples)
            self.ratio = min(1.0, max(0.05, (1 - alpha) * self.ratio + alpha * actual_tokens / est_tokens))
        with self._txn():
            self._refill()
            # the charge was a guess taken in the past: settling it restores exactly what exact charging
            # would have left, so a refund is not cut at capacity (the ratio keeps refunds small)
            self.tokens.level += charged - actual_tokens

    def refund(self, charged: int) -> None:
        """Give back a charge for a request the provider refused (429/5xx)."""
        if self.tokens is not None:
            with self._txn():
                self._refill()
                self.tokens.level = min(self.tokens.capacity, self.tokens.level + charged)

    def pause_for(self, seconds: float) -> None:
        if seconds > 0:
            with self._txn():
                self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, headers: Mapping[str, str], est_tokens: int = 0) -> None:
        """Adapt to ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` when the provider sends them."""
        rem_r = _int_header(headers, "x-ratelimit-remaining-requests")
        rem_t = _int_header(headers, "x-ratelimit-remaining-tokens")
        if rem_r is None and rem_t is None:
            return
        with self._txn():
            self._observe(headers, rem_r, rem_t, est_tokens)

    def _observe(self, headers: Mapping[str, str], rem_r: int | None, rem_t: int | None, est_tokens: int) -> None:
        self._refill()
        if rem_r is not None:
            if self.requests is not None:
                self.requests.level = min(self.requests.level, float(rem_r))
            if rem_r <= 0:
                self._pause_one_unit(headers, "requests", rem_r, 1)
        if rem_t is not None:
            if self.tokens is not None:
                self.tokens.level = min(self.tokens.level, float(rem_t))
            # without a configured tpm the headers are all we know: wait until this request would fit; with
            # one, the bucket paces and the headers only stop us when the provider says nothing is left
            if rem_t < max(1, est_tokens) and (self.tokens is None or rem_t <= 0):
                self._pause_one_unit(headers, "tokens", rem_t, max(1, est_tokens) - rem_t)

    def _pause_one_unit(self, headers: Mapping[str, str], kind: str, remaining: int, need: int) -> None:
        reset = parse_reset(header(headers, f"x-ratelimit-reset-{kind}"))
        if reset is None:
            return
        limit = _int_header(headers, f"x-ratelimit-limit-{kind}")
        # reset = time until the limit is fully replenished; refill is continuous
        per_unit = reset / max(1, limit - remaining) if limit else reset
        self._paused_until = max(self._paused_until, self._clock() + min(reset, per_unit * need))


def __getattr__(name: str):  # the shared budgets keep their SQL in contentgen.store.budget
    if name in ("SqliteSharedBudget", "PostgresSharedBudget"):
        from ..store import budget

        return getattr(budget, name)
    raise AttributeError(name)


def make_budget(settings, *, key: str, headroom: float | None = None) -> RateBudget:
    """The budget a client paces with: this process's own, or the one ``llm.shared_budget`` names (a SQLite file
    for the shards on one machine, a postgresql:// URL for shards anywhere)."""
    headroom = headroom or settings.budget_headroom
    if settings.shared_budget:
        from ..store.budget import PostgresSharedBudget, SqliteSharedBudget, is_postgres

        if is_postgres(str(settings.shared_budget)):
            return PostgresSharedBudget(str(settings.shared_budget), key, settings.rpm, settings.tpm,
                                        headroom=headroom)
        return SqliteSharedBudget(settings.shared_budget, key, settings.rpm, settings.tpm, headroom=headroom)
    return RateBudget(settings.rpm, settings.tpm, headroom=headroom)
