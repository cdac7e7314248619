"""Exact money: every answer's usage and cost in the run store as it arrives, and ``--max-cost`` as a reservation.

Before a request is sent, ``Spend.reserve`` sets aside its worst-case cost
(estimated prompt tokens at the input price plus ``max_tokens`` at the output
price). A request that would take spent + reserved past the cap waits while
other reservations are outstanding (their answers usually cost less than
reserved) and is refused only when nothing is left in flight: the run then
pauses (exit 5). On the answer the reservation is released and the real cost
recorded (``RunStore.record_answer``: ledger row and cache entry in one
transaction), so the manifest, summed from the ledger over every process of the
run, matches what the provider answered, and spend passes the cap by at most
one request's estimation error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .config import Campaign
from .errors import BudgetExhausted


def cost_of(campaign: Campaign, model: str | None, usage: dict[str, int], batch: bool = False, *,
            exact: bool = False) -> float | None:
    """USD for ``usage`` at the campaign's prices; rounded to micro-dollars for display unless ``exact`` (what
    the ledger stores per answer: rounding each of millions of answers would drift the total)."""
    price = campaign.price_for(model)
    if price is None:
        return None
    cached = usage.get("cached_tokens", 0)
    fresh = max(0, usage.get("prompt_tokens", 0) - cached)
    cost = (fresh * price.input + cached * price.cached_input + usage.get("completion_tokens", 0) * price.output) / 1e6
    cost *= campaign.batch_discount if batch else 1.0
    return cost if exact else round(cost, 6)


class Spend:
    def __init__(self, campaign: Campaign, model: str | None, store: Any, *, cap: float | None,
                 max_tokens: int) -> None:
        self.campaign = campaign
        self.model = model
        self.store = store
        self.cap = cap
        self.max_tokens = max_tokens
        self.price = campaign.price_for(model)
        totals = store.ledger_totals()
        batch = campaign.price_for(model) and store.get_meta("batch_usage")
        self.spent = float(totals["cost_usd"])  # every earlier process of this run, from the ledger
        if batch:
            import json

            self.spent += cost_of(campaign, model, json.loads(batch), batch=True) or 0.0
        self.reserved = 0.0
        self.outstanding = 0
        self._changed: asyncio.Event | None = None

    def estimate(self, prompt_tokens: int) -> float:
        if self.price is None:
            return 0.0
        return (prompt_tokens * self.price.input + self.max_tokens * self.price.output) / 1e6

    @property
    def limited(self) -> bool:
        return self.cap is not None and self.price is not None

    async def reserve(self, prompt_tokens: int) -> float:
        """Set aside this request's worst-case cost; wait or raise BudgetExhausted when it does not fit."""
        if not self.limited:
            return 0.0
        need = self.estimate(prompt_tokens)
        while self.spent + self.reserved + need > self.cap:  # type: ignore[operator]
            if self.outstanding == 0:
                raise BudgetExhausted(
                    f"spending limit reached: ${self.spent:.4f} spent, the next request (up to ${need:.4f}) "
                    f"would pass --max-cost ${self.cap:.4f}",
                    hint="raise --max-cost and re-run the same command to continue")
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()  # an outstanding request settles: look again
        self.reserved += need
        self.outstanding += 1
        return need

    def settle(self, held: float, cost: float) -> None:
        """The answer arrived (its cost) or the request failed (0): release the hold, count the cost."""
        self.spent += cost
        if not self.limited:
            return
        self.outstanding -= 1
        self.reserved = max(0.0, self.reserved - held) if self.outstanding else 0.0
        if self._changed is not None:
            self._changed.set()  # wake every waiter; the next one to wait gets a fresh event
            self._changed = None

    def record(self, key: str, value: dict[str, Any], usage: dict[str, int], *, cache: bool) -> float:
        """Commit one answer's usage and cost (and the answer, when reusable) to the run store now."""
        cost = cost_of(self.campaign, self.model, usage, exact=True) or 0.0
        self.store.record_answer(key, value, usage, cost, cache=cache)
        return cost
