"""SIGKILL at 20 named points across plan, generate, gate, store and export, plus random moments.

After every kill the same command resumes; at the end the export holds every
input member exactly once and matches its manifest, no paid request was asked
again (beyond the answers that died in flight with a killed process), and the
manifest's usage counts every answer the processes received.
"""

from __future__ import annotations

from contentgen.sample_data import write_sample_data
from tests import responders
from tests.crash import NAMED_POINTS, check_exactly_once, check_paid_once, run_with_kills


def test_kill9_anywhere_then_resume_exports_every_member_once(tmp_path, fake_openai, store_url):
    """Both backends: OUT/run.db (SQLite) and a PostgreSQL database on loopback (``--store``)."""
    fake_openai.responder = responders.bad_then_good
    fake_openai.reset(latency_s=0.005)
    fake_openai.responder = responders.bad_then_good
    paths = write_sample_data(tmp_path / "data", 500, seed=3)
    out = tmp_path / "out"
    lines: list[str] = []
    res = run_with_kills(paths["campaign"], out, fake_openai.base_url, named=NAMED_POINTS, random_kills=6,
                         log=lines.append, store=store_url)
    assert len(NAMED_POINTS) >= 20
    # the named points in every stage really fired (the process died there)
    killed = [x for x in lines if x.endswith("killed")]
    for stage in ("plan", "generate", "gate", "store-commit", "export-write", "export-rename", "manifest"):
        assert any(f" {stage}:" in x for x in killed), (stage, lines)
    assert res["kills"] >= 20, lines
    check_exactly_once(paths["members"], out)
    if store_url:  # the run really lived in PostgreSQL: the folder only points at it
        assert not (out / "run.db").exists() and (out / "store.json").exists()
    # no paid request asked twice after a resume (counted at the server), and every answer received is in the
    # manifest's usage, over all the processes of the run
    paid = check_paid_once(fake_openai, out, kills=res["kills"])
    assert paid["recorded"] > 0


def test_resume_keeps_decided_members_and_decides_only_the_rest(tmp_path, fake_openai):
    """After a kill, the resumed process finds the members the first one committed and does not decide them
    again: it plans, prompts and gates only the others (the manifest's ``window.found_decided``), and the
    committed members' stored records are the ones the first process wrote."""
    import json
    import os
    import signal
    import subprocess

    from contentgen.store import open_run_store
    from tests.crash import REPO, _cmd

    fake_openai.responder = responders.copywriter
    paths = write_sample_data(tmp_path / "data", 120, seed=5)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CONTENTGEN_FAILPOINT": "store-commit:50"}
    p = subprocess.run(_cmd(paths["campaign"], out, fake_openai.base_url), env=env, capture_output=True)
    assert p.returncode == -signal.SIGKILL, p.stdout.decode(errors="replace")[-2000:]
    store = open_run_store(out)
    try:
        first = {k: t for k, _o, t in store.iter_record_texts()}
    finally:
        store.close()
    assert 0 < len(first) < 120, len(first)
    asked_before = len(fake_openai.requests)
    env.pop("CONTENTGEN_FAILPOINT")
    r = subprocess.run(_cmd(paths["campaign"], out, fake_openai.base_url), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    m = json.loads((out / "manifest.json").read_text())
    assert m["window"]["found_decided"] == len(first), (m["window"], len(first))
    # the resumed process looked up answers only for the members it decided (not for the committed ones)
    assert m["dedup"]["lookups"] <= 3 * (120 - len(first)), (m["dedup"], len(first))
    store = open_run_store(out)
    try:
        after = {k: t for k, _o, t in store.iter_record_texts()}
    finally:
        store.close()
    assert {k: after[k] for k in first} == first
    assert len(fake_openai.requests) >= asked_before
    check_exactly_once(paths["members"], out)
