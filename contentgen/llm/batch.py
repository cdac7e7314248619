"""Batch mode: first attempts go through the OpenAI Batch API, then the normal run uses them.

A batch run is a cache prefill, recorded step by step in the run store's batch
ledger (``store.py``: ``batch_files``, ``batch_items``, ``batch_failures``):

1. **write**: every pending member's first prompt becomes a request line
   (``custom_id`` = the generation cache key, so identical prompts are asked
   once) in files of at most 50,000 requests, 200 MB and, with
   ``llm.batch_queued_tokens``, 90% of the account's enqueued-token limit;
2. **submit**: upload and create a batch (24h window), never more enqueued
   tokens in flight than that limit. Uploads and batches carry this run's
   token in their filename and metadata: a process killed between
   ``batches.create`` and recording it finds its batch again instead of
   creating a second one;
3. **poll and join**: answers go into the cache (truncated or empty ones
   too: the gates judge them, as they would a live answer). Every request a
   batch did not answer is recorded with its reason: the error file's lines
   (``batch_expired``, ``batch_cancelled``, a 429/5xx/4xx response), the
   batch's own ``errors.data`` (a failed batch; a line number names the one bad
   request), or its absence from the output. Retryable ones go into a new
   batch (``llm.batch_resubmits`` times); a batch that failed with
   ``token_limit_exceeded`` is split to the limit its message states and
   resubmitted as earlier batches finish.

Nothing goes live at full price unless the campaign says so
(``llm.batch_live_fallback: true``): otherwise requests still unanswered stop
the run (``BatchIncomplete``, exit 3) with their reasons; re-running the same
command puts them in a new batch. Every Files/Batches call is retried with
backoff on 429/5xx/connection errors (SDK retries are off); a Batch API that
stays unreachable while polling pauses the run (exit 3) with the batches
recorded, and the next run polls them again.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import openai
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from .. import failpoints
from ..errors import ProviderMisconfigured, ProviderUnavailable
from .client import estimate_tokens
from .retry import ProviderWait, is_transient

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
TERMINAL = {"completed", "failed", "expired", "cancelled"}
IN_FLIGHT = ("validating", "in_progress", "finalizing", "cancelling")
RETRYABLE_CODES = {"batch_expired", "batch_cancelled", "request_timeout", "batch_failed", "missing_from_output",
                   "rate_limit_exceeded", "server_error"}
_LIMIT = re.compile(r"limit:?\s*([\d,_]+)\s*enqueued tokens", re.I)


class BatchIncomplete(ProviderUnavailable):
    """Requests the Batch API could not answer, and the campaign does not send them live."""


class _Unreachable(ProviderUnavailable):
    """A Files/Batches call still failed (429/5xx/connection) after its retries."""


class BatchRunner:
    def __init__(self, store, client, *, model: str, params: dict[str, Any], out_dir: Path,
                 poll_s: float = 5.0, log: Callable[[str], None] = print,
                 max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES, queued_tokens: int | None = None,
                 resubmits: int | None = None, live_fallback: bool | None = None, api_retries: int = 6,
                 poll_outage_after: int = 10, backoff_s: float | None = None) -> None:
        settings = client.settings
        self.store = store
        self.client = client
        self.model = model
        self.params = params
        self.dir = Path(out_dir) / "batches"
        self.poll_s = poll_s
        self.log = log
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.queued_tokens = queued_tokens if queued_tokens is not None else settings.batch_queued_tokens
        self.token_cap = int(self.queued_tokens * 0.9) if self.queued_tokens else None
        self.resubmits = settings.batch_resubmits if resubmits is None else resubmits
        self.live_fallback = settings.batch_live_fallback if live_fallback is None else live_fallback
        self.api_retries = api_retries
        self.poll_outage_after = poll_outage_after
        self.backoff_s = backoff_s if backoff_s is not None else min(1.0, max(0.01, poll_s))
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0}
        self.run_token = store.get_meta("batch_run_token")
        if not self.run_token:
            self.run_token = secrets.token_hex(8)
            store.set_meta("batch_run_token", self.run_token)
        self._fresh: set[str] = set()           # files this process wrote/uploaded: no need to look them up
        self._poll_failures = 0
        self.endpoint = "/chat/completions" if client.endpoint.kind == "azure" else "/v1/chat/completions"
        store.batch_reset_tries()

    # -- Files/Batches calls, retried ------------------------------------------------------------
    async def _api(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One Files/Batches call, retried on 429/5xx/connection errors; failures as ContentgenErrors."""
        retrying = AsyncRetrying(stop=stop_after_attempt(self.api_retries + 1),
                                 wait=ProviderWait(initial_s=self.backoff_s, max_s=60 * self.backoff_s),
                                 retry=retry_if_exception(is_transient), reraise=True)
        what = getattr(fn, "__qualname__", "call").replace("AsyncBatches.", "batches.").replace("AsyncFiles.",
                                                                                                  "files.")
        try:
            async for attempt in retrying:
                with attempt:
                    return await fn(*args, **kwargs)
        except (openai.APIConnectionError, openai.APIStatusError) as e:
            if is_transient(e):
                raise _Unreachable(f"the Batch API at {self.client.base_url} failed {self.api_retries + 1} times in "
                                   f"a row ({what}: {_describe(e)}); what was submitted is recorded",
                                   hint="re-run the same command to continue (no batch is created twice)") from None
            body = getattr(e, "body", None)
            msg = (body.get("message") if isinstance(body, dict) else None) or str(e)
            raise ProviderMisconfigured(f"the Batch API at {self.client.base_url} refused {what}: "
                                        f"{_describe(e)} {msg}",
                                        hint="check the key, the model's Batch API access and --base-url; then "
                                             "re-run the same command") from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- phase 1: request files -----------------------------------------------------------------
    def write_requests(self, items: Iterable[tuple[str, list[dict[str, Any]], dict[str, Any]]]) -> int:
        """items: (cache key, messages, schema). Skips cached and already-requested keys. Returns new requests."""
        lines: list[tuple[str, bytes, int]] = []
        seen: set[str] = set()                      # custom_id must be unique in a file
        for key, messages, schema in items:
            if key in seen or self.store.cache_get(key) is not None or self.store.batch_has(key):
                continue
            seen.add(key)
            body = self.client.request_body(messages, schema=schema)
            line = json.dumps({"custom_id": key, "method": "POST", "url": self.endpoint, "body": body},
                              ensure_ascii=False) + "\n"
            lines.append((key, line.encode(), estimate_tokens(body["messages"])))
        self._write_files(lines, round_=0)
        return len(lines)

    def _write_files(self, lines: list[tuple[str, bytes, int]], round_: int) -> list[str]:
        """Pack request lines into files within the request, byte and enqueued-token caps."""
        self.dir.mkdir(parents=True, exist_ok=True)
        written: list[str] = []
        part: list[tuple[str, bytes, int]] = []
        size = tokens = 0

        def flush() -> None:
            nonlocal part, size, tokens
            if not part:
                return
            name = f"requests-{self.store.batch_file_count() + 1:05d}.jsonl"
            tmp = self.dir / (name + ".tmp")
            with open(tmp, "wb") as fh:
                fh.writelines(raw for _, raw, _ in part)
            tmp.replace(self.dir / name)
            self.store.batch_add_file(name, [(k, t) for k, _, t in part], round_)
            self._fresh.add(name)
            written.append(name)
            part, size, tokens = [], 0, 0

        for key, raw, tok in lines:
            over_tokens = self.token_cap is not None and part and tokens + tok > self.token_cap
            if len(part) >= self.max_requests or (part and size + len(raw) > self.max_bytes) or over_tokens:
                flush()
            part.append((key, raw, tok))
            size += len(raw)
            tokens += tok
        flush()
        return written

    def _lines_of(self, file: str) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        with open(self.dir / file, "rb") as fh:
            for raw in fh:
                if raw.strip():
                    out[json.loads(raw)["custom_id"]] = raw
        return out

    # -- phase 2: upload and create ----------------------------------------------------------------
    async def submit(self) -> None:
        """Upload and create batches for written files, within the enqueued-token limit."""
        sdk = self.client.sdk
        in_flight = sum(f["tokens"] for f in self.store.batch_files(*IN_FLIGHT))
        for f in self.store.batch_files("written", "uploaded"):
            file = f["file"]
            if self.token_cap is not None and in_flight > 0 and in_flight + f["tokens"] > self.token_cap:
                break                              # wait for earlier batches to leave the queue
            upload_name = f"{self.run_token}-{file}"
            file_id = f["file_id"]
            if not file_id and file not in self._fresh:
                file_id = await self._find_upload(upload_name)
            if not file_id:
                data = (self.dir / file).read_bytes()
                file_id = (await self._api(sdk.files.create, file=(upload_name, data), purpose="batch")).id
            self.store.batch_set_file(file, file_id=file_id, status="uploaded")
            batch = None if file in self._fresh else await self._find_batch(file)
            if batch is None:
                batch = await self._api(sdk.batches.create, input_file_id=file_id, endpoint=self.endpoint,
                                        completion_window="24h",
                                        metadata={"source": "contentgen", "contentgen_run": self.run_token,
                                                  "contentgen_file": file})
                failpoints.hit("batch-created")
            else:
                self.log(f"[contentgen] batch {batch.id} for {file} found again (created before a restart)")
            self.store.batch_set_file(file, batch_id=batch.id, status=batch.status)
            self.log(f"[contentgen] batch {batch.id} submitted ({file}, {f['requests']} requests, "
                     f"~{f['tokens']} input tokens)")
            failpoints.hit("batch-submitted")
            in_flight += f["tokens"]

    async def _find_upload(self, name: str) -> str | None:
        page = await self._api(self.client.sdk.files.list, purpose="batch")
        for meta in page.data:
            if meta.filename == name:
                return meta.id
        return None

    async def _find_batch(self, file: str) -> Any | None:
        after: str | None = None
        for _ in range(50):                        # newest first; ours are recent
            kwargs: dict[str, Any] = {"limit": 100}
            if after:
                kwargs["after"] = after
            page = await self._api(self.client.sdk.batches.list, **kwargs)
            for b in page.data:
                meta = b.metadata or {}
                if meta.get("contentgen_run") == self.run_token and meta.get("contentgen_file") == file:
                    return b
            if not page.has_more or not page.data:
                return None
            after = page.data[-1].id
        return None

    # -- phase 3: poll and join --------------------------------------------------------------------
    async def wait_and_join(self, timeout_s: float | None = None) -> dict[str, int]:
        t0 = time.monotonic()
        joined = errors = 0
        if not self.live_fallback:
            self._resubmit()                       # a re-run: what earlier runs could not get answered goes again
        while True:
            await self.submit()
            open_files = [f for f in self.store.batch_files() if f["batch_id"] and not f["joined"]
                          and f["status"] != "superseded"]
            if not open_files and not self.store.batch_files("written", "uploaded"):
                break
            polled_any = False
            for f in open_files:
                try:
                    b = await self._api(self.client.sdk.batches.retrieve, f["batch_id"])
                except _Unreachable as e:
                    self.log(f"[contentgen] batch {f['batch_id']}: status not readable ({e.message}); polling again")
                    continue
                polled_any = True
                self.store.batch_set_file(f["file"], status=b.status)
                if b.status in TERMINAL:
                    ok, bad = await self._finish(f, b)
                    joined += ok
                    errors += bad
            if open_files and not polled_any:
                self._poll_failures += 1
                if self._poll_failures >= self.poll_outage_after:
                    raise ProviderUnavailable(
                        f"the Batch API at {self.client.base_url} could not be read {self._poll_failures} polls in a "
                        "row; the batches are recorded in the run store",
                        hint="re-run the same command to poll them again (no batch is created twice)")
            else:
                self._poll_failures = 0
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                return {"joined": joined, "errors": errors, "timed_out": 1}
            if any(not f["joined"] for f in self.store.batch_files(*IN_FLIGHT)) or \
                    self.store.batch_files("written", "uploaded"):
                await asyncio.sleep(self.poll_s)
        self._conclude()
        return {"joined": joined, "errors": errors}

    async def _finish(self, f: dict[str, Any], b: Any) -> tuple[int, int]:
        """Join a finished batch: answers into the cache, every other request recorded with its reason."""
        sdk = self.client.sdk
        file, batch_id = f["file"], b.id
        keys = [k for k, _, _ in self.store.batch_file_items(file)]
        answered: list[str] = []
        failures: dict[str, tuple[str, str, bool]] = {}
        if b.output_file_id:
            text = (await self._api(sdk.files.content, b.output_file_id)).text
            answered, out_failures = self._join(text)
            failures.update(out_failures)
        if b.error_file_id:
            text = (await self._api(sdk.files.content, b.error_file_id)).text
            failures.update(_error_lines(text))
        batch_errors = [e.model_dump() if hasattr(e, "model_dump") else dict(e)
                        for e in ((b.errors.data or []) if b.errors else [])]
        if b.status == "failed" and any(e.get("code") == "token_limit_exceeded" for e in batch_errors):
            self.store.batch_set_file(file, joined=1, status="superseded", errors=json.dumps(batch_errors))
            self._split_over_token_limit(f, batch_errors)
            return 0, 0
        done = set(answered) | set(failures)
        missing = [k for k in keys if k not in done]
        if b.status == "failed":
            by_line = {e.get("line"): e for e in batch_errors if e.get("line")}
            first = batch_errors[0] if batch_errors else {"code": "batch_failed", "message": "the batch failed"}
            for n, key in enumerate(keys, 1):
                if key in done:
                    continue
                if n in by_line:                    # this request is what the batch refused
                    failures[key] = (by_line[n].get("code") or "invalid_request", by_line[n].get("message") or "",
                                     False)
                else:
                    failures[key] = ("batch_failed", f"the batch failed: {first.get('code')}: "
                                                     f"{first.get('message')}", True)
        else:
            code = {"expired": "batch_expired", "cancelled": "batch_cancelled"}.get(b.status, "missing_from_output")
            for key in missing:
                failures[key] = (code, f"not answered: the batch ended {b.status}", True)
        known = set(keys)
        rows = [(k, c, m, r) for k, (c, m, r) in failures.items() if k in known]
        self.store.batch_mark_answered([k for k in answered if k in known])
        self.store.batch_record_failures(file, batch_id, rows)
        self.store.batch_set_file(file, joined=1, answered=len(answered), failed=len(rows),
                                  errors=json.dumps(batch_errors) if batch_errors else None)
        reasons = Counter(c for _, c, _, _ in rows)
        why = ", ".join(f"{n} {c}" for c, n in reasons.most_common()) if rows else "none failed"
        self.log(f"[contentgen] batch {batch_id} {b.status}: {len(answered)} answered, {len(rows)} not ({why})")
        self._resubmit()
        return len(answered), len(rows)

    def _resubmit(self) -> None:
        """Requests that failed for a retryable reason go into new batches, at most ``resubmits`` times each."""
        by_file: dict[str, list[str]] = {}
        for r in self.store.batch_failed():
            if r["retryable"] and r["tries"] <= self.resubmits:
                by_file.setdefault(self.store.batch_item_file(r["key"]), []).append(r["key"])
        lines: list[tuple[str, bytes, int]] = []
        for file, keys in by_file.items():
            have = self._lines_of(file)
            tokens = {k: t for k, t, _ in self.store.batch_file_items(file)}
            lines += [(k, have[k], tokens.get(k, 0)) for k in keys if k in have]
        if lines:
            names = self._write_files(lines, round_=1)
            self.log(f"[contentgen] {len(lines)} request(s) resubmitted in a new batch ({', '.join(names)})")

    def _split_over_token_limit(self, f: dict[str, Any], batch_errors: list[dict[str, Any]]) -> None:
        message = next((e.get("message") or "" for e in batch_errors if e.get("code") == "token_limit_exceeded"), "")
        m = _LIMIT.search(message)
        others = sum(x["tokens"] for x in self.store.batch_files(*IN_FLIGHT))
        if m:
            limit = int(re.sub(r"[,_]", "", m.group(1)))
            cap = int(limit * 0.9)
        else:
            cap = f["tokens"] if others else max(1, f["tokens"] // 2)
        if not others and f["tokens"] <= cap:
            cap = max(1, f["tokens"] // 2)          # our estimate ran short: make the parts smaller
        self.token_cap = min(self.token_cap or cap, cap)
        items = self.store.batch_file_items(f["file"])
        have = self._lines_of(f["file"])
        if len(items) == 1 and not others:
            key = items[0][0]
            self.store.batch_record_failures(f["file"], None, [(key, "token_limit_exceeded",
                                                                f"this request alone is over the queued-token limit: "
                                                                f"{message}", False)])
            return
        names = self._write_files([(k, have[k], t) for k, t, _ in items], round_=f["round"])
        self.log(f"[contentgen] batch for {f['file']} failed: token_limit_exceeded ({message[:160]}); split into "
                 f"{len(names)} file(s) of at most ~{self.token_cap} input tokens, submitted as the queue allows")

    def _join(self, text: str) -> tuple[list[str], dict[str, tuple[str, str, bool]]]:
        answered: list[str] = []
        failures: dict[str, tuple[str, str, bool]] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            key = rec.get("custom_id")
            resp = rec.get("response") or {}
            if rec.get("error") or resp.get("status_code") != 200:
                failures[key] = _line_failure(rec)
                continue
            body = resp.get("body") or {}
            choice = (body.get("choices") or [{}])[0]
            msg = choice.get("message") or {}
            usage = body.get("usage") or {}
            self.usage["prompt_tokens"] += usage.get("prompt_tokens", 0)
            self.usage["completion_tokens"] += usage.get("completion_tokens", 0)
            self.usage["requests"] += 1
            # truncated or empty answers are answers too: the gates judge them (and repairs go live)
            self.store.cache_put(key, {
                "text": msg.get("content") or "", "finish_reason": choice.get("finish_reason"),
                "prompt_tokens": usage.get("prompt_tokens", 0), "completion_tokens": usage.get("completion_tokens", 0),
                "batch": True})
            answered.append(key)
        return answered, failures

    def _conclude(self) -> None:
        failed = self.store.batch_failed()
        failed = [r for r in failed if self.store.cache_get(r["key"]) is None]
        if not failed:
            return
        reasons = Counter(r["code"] or "?" for r in failed)
        why = ", ".join(f"{n} {c}" for c, n in reasons.most_common())
        if self.live_fallback:
            self.log(f"[contentgen] {len(failed)} request(s) the Batch API did not answer ({why}) go live at full "
                     "price (llm.batch_live_fallback: true)")
            return
        refused = sum(1 for r in failed if not r["retryable"])
        again = (f"; {refused} of them were refused (a new batch would refuse them again)" if refused else "")
        raise BatchIncomplete(
            f"{len(failed)} request(s) could not be answered by the Batch API ({why}); none was sent live{again}",
            hint="re-run the same command to put the others in a new batch, or set llm.batch_live_fallback: true "
                 "in the campaign (the run resumes) to send them live at full price; each request's reason is in "
                 "run.db, table batch_failures")

    def summary(self) -> dict[str, Any]:
        return self.store.batch_summary()


def _line_failure(rec: dict[str, Any]) -> tuple[str, str, bool]:
    """(code, message, retryable) of an error-file (or failed output) line."""
    err = rec.get("error")
    if err:
        code = err.get("code") or "error"
        return code, err.get("message") or "", code in RETRYABLE_CODES
    resp = rec.get("response") or {}
    status = int(resp.get("status_code") or 0)
    body_err = ((resp.get("body") or {}).get("error") or {})
    code = body_err.get("code") or body_err.get("type") or f"http_{status}"
    return str(code), f"HTTP {status}: {body_err.get('message') or ''}", status == 429 or status >= 500


def _error_lines(text: str) -> dict[str, tuple[str, str, bool]]:
    out: dict[str, tuple[str, str, bool]] = {}
    for line in text.splitlines():
        if line.strip():
            rec = json.loads(line)
            if rec.get("custom_id"):
                out[rec["custom_id"]] = _line_failure(rec)
    return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__
