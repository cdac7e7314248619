"""Shards: `run --shard i/n` + `merge` and a 4-shard run on a local Ray instance equal the single-process run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.export import verify
from contentgen.pipeline import RunOptions, run_campaign
from contentgen.sample_data import write_sample_data
from tests import responders


def outcomes(out: Path) -> dict[str, tuple]:
    recs = [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]
    return {r.get("member_key") or r["member_id"]: (r["outcome"], r.get("channel"), r.get("variant"),
                                                    json.dumps(r.get("message"), sort_keys=True)) for r in recs}


def records(out: Path) -> list[dict]:
    return sorted((json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()),
                  key=lambda r: r.get("member_key") or r["member_id"])


@pytest.fixture
def sample(tmp_path):
    return write_sample_data(tmp_path / "data", 240, seed=8)


def test_shards_merge_equals_single_run(tmp_path, fake_openai, store_url):
    """The shards on either backend (SQLite: a run.db each; PostgreSQL: one database for all three, 2,000
    members) merge to the single SQLite run's export."""
    sample = write_sample_data(tmp_path / "data", 2000 if store_url else 240, seed=8)
    fake_openai.responder = responders.copywriter
    single = tmp_path / "single"
    run_campaign(sample["campaign"], RunOptions(out=single, base_url=fake_openai.base_url, api_key="k"))
    runner = CliRunner()
    shard_dirs = []
    for i in range(3):
        d = tmp_path / f"shard{i}"
        r = runner.invoke(cli, ["run", str(sample["campaign"]), "--out", str(d), "--base-url", fake_openai.base_url,
                                "--api-key", "k", "--shard", f"{i}/3", *(["--store", store_url] if store_url else [])])
        assert r.exit_code == 0, r.output
        shard_dirs.append(str(d))
    if store_url:
        import psycopg

        with psycopg.connect(store_url) as conn:
            scopes = dict(conn.execute("SELECT scope, COUNT(*) FROM members GROUP BY scope").fetchall())
        assert sorted(scopes) == ["shard-0-of-3", "shard-1-of-3", "shard-2-of-3"]
        assert sum(scopes.values()) == verify(single)["members"]
        assert not any((Path(d) / "run.db").exists() for d in shard_dirs)
        # a finished shard re-exports from the shared database
        r = runner.invoke(cli, ["export", shard_dirs[1]])
        assert r.exit_code == 0, r.output
    # an incomplete set of shards is refused
    r = runner.invoke(cli, ["merge", str(tmp_path / "bad"), *shard_dirs[:2]])
    assert r.exit_code != 0 and "expected 0..2" in r.output
    r = runner.invoke(cli, ["merge", str(tmp_path / "merged"), *shard_dirs])
    assert r.exit_code == 0, r.output
    assert outcomes(tmp_path / "merged") == outcomes(single)
    assert records(tmp_path / "merged") == records(single)  # the same export, record for record
    assert verify(tmp_path / "merged")["counts"] == verify(single)["counts"]
    # the same shard twice is refused
    r = runner.invoke(cli, ["merge", str(tmp_path / "dup"), shard_dirs[0], shard_dirs[0], shard_dirs[1]])
    assert r.exit_code != 0


def test_four_shards_on_local_ray_equal_single_run(sample, tmp_path, fake_openai):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    from contentgen.distributed import run_on_ray

    fake_openai.responder = responders.copywriter
    single = tmp_path / "single"
    run_campaign(sample["campaign"], RunOptions(out=single, base_url=fake_openai.base_url, api_key="k"))
    merged = run_on_ray(sample["campaign"], tmp_path / "ray", 4, base_url=fake_openai.base_url, api_key="k",
                        num_cpus=2)
    assert [s["status"] for s in merged["shards"]] == ["complete"] * 4
    assert outcomes(tmp_path / "ray" / "merged") == outcomes(single)
    assert merged["total_members"] == verify(single)["members"]
