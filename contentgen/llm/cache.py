"""Content-addressed generation cache: identical prompts are generated once.

The key is a hash of (model, parameters, rendered messages, schema). Requests in
flight are shared (many tier-1 and holdout members have the same prompt), and
results persist in the run store so a re-run reuses them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


def cache_key(model: str, params: dict[str, Any], messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
    blob = json.dumps({"model": model, "params": params, "messages": messages, "schema": schema},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class CacheStats:
    lookups: int = 0
    hits_store: int = 0
    hits_inflight: int = 0
    misses: int = 0

    @property
    def dedup_ratio(self) -> float:
        """Share of generation requests answered without calling the model."""
        return (self.hits_store + self.hits_inflight) / self.lookups if self.lookups else 0.0


class GenerationCache:
    def __init__(self, store) -> None:
        self.store = store
        self.stats = CacheStats()
        self._inflight: dict[str, asyncio.Future] = {}

    async def get_or_create(self, key: str, produce: Callable[[], Awaitable[dict[str, Any]]]
                            ) -> tuple[dict[str, Any], bool]:
        """Return (result, cached). ``produce`` is called at most once per key."""
        self.stats.lookups += 1
        hit = self.store.cache_get(key)
        if hit is not None:
            self.stats.hits_store += 1
            return hit, True
        fut = self._inflight.get(key)
        if fut is not None:
            self.stats.hits_inflight += 1
            return await asyncio.shield(fut), True
        self.stats.misses += 1
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await produce()
        except BaseException as e:
            self.stats.misses -= 1
            self.stats.lookups -= 1
            fut.set_exception(e)
            fut.exception()  # mark retrieved
            raise
        finally:
            self._inflight.pop(key, None)
        if result.get("text") and result.get("finish_reason") != "length":
            self.store.cache_put(key, result)
        fut.set_result(result)
        return result, False
