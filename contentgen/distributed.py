"""Past one machine: shards of one campaign as Ray tasks, merged into one export.

Each task runs ``run --shard i/n`` into its own folder (its own run store, so a
failed task is simply retried and resumes), then the driver merges the shard
exports with the same checks as ``contentgen merge``. Ray is an optional extra
(``pip install -e '.[ray]'``); ``address=None`` starts a local Ray instance,
``address="auto"`` joins a running cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ContentgenError


class RayUnavailable(ContentgenError):
    exit_code = 2


def _run_shard(campaign: str, out: str, i: int, n: int, base_url: str | None, api_key: str | None,
               model: str | None, concurrency: int | None) -> dict[str, Any]:
    from .pipeline import RunOptions, run_campaign

    opts = RunOptions(out=Path(out), base_url=base_url, api_key=api_key, model=model, shard=(i, n),
                      concurrency=concurrency)
    res = run_campaign(Path(campaign), opts)
    return {"shard": i, "status": res.status, "message": res.message, "out": out,
            "total": res.manifest.get("total_members")}


def run_on_ray(campaign: Path, out: Path, shards: int, *, base_url: str | None = None, api_key: str | None = None,
               model: str | None = None, concurrency: int | None = None, address: str | None = None,
               num_cpus: int | None = None) -> dict[str, Any]:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("Ray is not installed", hint="pip install -e '.[ray]' (or use run --shard i/n "
                                                          "under a Kubernetes Job array, see README)") from None
    from .export import merge

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    try:
        task = ray.remote(max_retries=2)(_run_shard)
        refs = [task.remote(str(Path(campaign).resolve()), str(out / f"shard-{i}-of-{shards}"), i, shards,
                            base_url, api_key, model, concurrency) for i in range(shards)]
        results = ray.get(refs)
    finally:
        if started_here:
            ray.shutdown()
    paused = [r for r in results if r["status"] == "paused"]
    if paused:
        raise ContentgenError(f"{len(paused)} shard(s) paused: {paused[0]['message']}",
                              hint="re-run the same command: finished shards are no-ops, paused ones resume")
    merged = merge(out / "merged", [Path(r["out"]) for r in sorted(results, key=lambda r: r["shard"])])
    merged["shards"] = results
    return merged
