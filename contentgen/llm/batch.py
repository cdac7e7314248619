"""Batch mode: first attempts go through the OpenAI Batch API, then the normal run uses them.

A batch run is a cache prefill. Phase 1 renders every pending member's first
prompt and writes request files (at most 50,000 requests and 200 MB each,
``custom_id`` = the generation cache key, so identical prompts are asked once).
Phase 2 uploads each file and creates a batch (24h window). Phase 3 polls,
downloads the output and error files and joins results back on ``custom_id``
into the run store's cache. Every step is recorded in the ``batches`` table,
so a process killed while batches are in flight resumes polling them. Then
the ordinary pipeline runs: first attempts are cache hits, and repairs of what
failed the gates (and requests the batch could not answer) go live.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .. import failpoints

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def ensure_tables(db) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS batch_requests (key TEXT PRIMARY KEY, file TEXT NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS batches (file TEXT PRIMARY KEY, requests INTEGER, file_id TEXT, "
               "batch_id TEXT, status TEXT, output_joined INTEGER DEFAULT 0, errors INTEGER DEFAULT 0, "
               "updated_at REAL)")


class BatchRunner:
    def __init__(self, store, client, *, model: str, params: dict[str, Any], out_dir: Path,
                 poll_s: float = 5.0, log: Callable[[str], None] = print,
                 max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES) -> None:
        self.store = store
        self.db = store.db
        self.client = client
        self.model = model
        self.params = params
        self.dir = Path(out_dir) / "batches"
        self.poll_s = poll_s
        self.log = log
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0}
        ensure_tables(self.db)

    # -- phase 1: request files -----------------------------------------------------------------
    def write_requests(self, items: Iterable[tuple[str, list[dict[str, Any]], dict[str, Any]]]) -> int:
        """items: (cache key, messages, schema). Skips cached and already-requested keys. Returns new requests."""
        self.dir.mkdir(parents=True, exist_ok=True)
        n_files = self.db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
        fh = None
        path: Path | None = None
        count = size = written = 0

        def close() -> None:
            nonlocal fh
            if fh is not None:
                fh.flush()
                fh.close()
                self.db.execute("INSERT OR REPLACE INTO batches (file, requests, status, updated_at) "
                                "VALUES (?, ?, 'written', ?)", (path.name, count, time.time()))
                fh = None

        for key, messages, schema in items:
            if self.store.cache_get(key) is not None:
                continue
            if self.db.execute("SELECT 1 FROM batch_requests WHERE key=?", (key,)).fetchone():
                continue
            body = self.client.request_body(messages, schema=schema)
            line = json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body},
                              ensure_ascii=False) + "\n"
            raw = line.encode()
            if fh is None or count >= self.max_requests or size + len(raw) > self.max_bytes:
                close()
                n_files += 1
                path = self.dir / f"requests-{n_files:05d}.jsonl"
                fh = open(path, "wb")
                count = size = 0
            fh.write(raw)
            count += 1
            size += len(raw)
            written += 1
            self.db.execute("INSERT INTO batch_requests VALUES (?, ?)", (key, path.name))
        close()
        return written

    # -- phase 2: upload and create ----------------------------------------------------------------
    async def submit(self) -> None:
        sdk = self.client.sdk
        for file, in list(self.db.execute("SELECT file FROM batches WHERE batch_id IS NULL ORDER BY file")):
            row = self.db.execute("SELECT file_id FROM batches WHERE file=?", (file,)).fetchone()
            file_id = row[0]
            if not file_id:
                with open(self.dir / file, "rb") as fh:
                    up = await sdk.files.create(file=(file, fh.read()), purpose="batch")
                file_id = up.id
                self.db.execute("UPDATE batches SET file_id=?, status='uploaded', updated_at=? WHERE file=?",
                                (file_id, time.time(), file))
            batch = await sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                             completion_window="24h",
                                             metadata={"source": "contentgen", "file": file})
            self.db.execute("UPDATE batches SET batch_id=?, status=?, updated_at=? WHERE file=?",
                            (batch.id, batch.status, time.time(), file))
            self.log(f"[contentgen] batch {batch.id} submitted ({file})")
            failpoints.hit("batch-submitted")

    # -- phase 3: poll and join --------------------------------------------------------------------
    async def wait_and_join(self, timeout_s: float | None = None) -> dict[str, int]:
        sdk = self.client.sdk
        t0 = time.monotonic()
        joined = errors = 0
        while True:
            open_rows = list(self.db.execute("SELECT file, batch_id FROM batches WHERE batch_id IS NOT NULL "
                                             "AND output_joined=0"))
            if not open_rows:
                return {"joined": joined, "errors": errors}
            for file, batch_id in open_rows:
                b = await sdk.batches.retrieve(batch_id)
                self.db.execute("UPDATE batches SET status=?, updated_at=? WHERE file=?", (b.status, time.time(), file))
                if b.status not in TERMINAL:
                    continue
                ok = bad = 0
                if b.output_file_id:
                    text = (await sdk.files.content(b.output_file_id)).text
                    ok = self._join(text)
                if b.error_file_id:
                    bad = sum(1 for line in (await sdk.files.content(b.error_file_id)).text.splitlines() if line)
                self.db.execute("UPDATE batches SET output_joined=1, errors=? WHERE file=?", (bad, file))
                joined += ok
                errors += bad
                self.log(f"[contentgen] batch {batch_id} {b.status}: {ok} results joined, {bad} failed "
                         "(failed ones go live)")
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                return {"joined": joined, "errors": errors, "timed_out": 1}
            await asyncio.sleep(self.poll_s)

    def _join(self, text: str) -> int:
        n = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            resp = rec.get("response") or {}
            if resp.get("status_code") != 200 or rec.get("error"):
                continue
            body = resp.get("body") or {}
            choice = (body.get("choices") or [{}])[0]
            msg = choice.get("message") or {}
            usage = body.get("usage") or {}
            if not msg.get("content") or choice.get("finish_reason") == "length":
                continue  # leave it uncached: the live pass asks again and the gates see the real answer
            self.usage["prompt_tokens"] += usage.get("prompt_tokens", 0)
            self.usage["completion_tokens"] += usage.get("completion_tokens", 0)
            self.usage["requests"] += 1
            self.store.cache_put(rec["custom_id"], {
                "text": msg.get("content"), "finish_reason": choice.get("finish_reason"),
                "prompt_tokens": usage.get("prompt_tokens", 0), "completion_tokens": usage.get("completion_tokens", 0),
                "batch": True})
            n += 1
        return n

    def summary(self) -> dict[str, Any]:
        rows = list(self.db.execute("SELECT COUNT(*), COALESCE(SUM(requests),0), COALESCE(SUM(errors),0) "
                                    "FROM batches"))
        files, requests, errors = rows[0]
        return {"files": files, "requests": requests, "errors": errors}
