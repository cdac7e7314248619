"""Faults with a clear error, nothing lost, and a run that resumes afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.export import verify
from contentgen.sample_data import write_sample_data
from tests import responders
from tests.util import REPO, decided_members

N = 60


@pytest.fixture
def sample(tmp_path):
    return write_sample_data(tmp_path / "data", N, seed=5)


def run_cli(sample, out, fake, *extra):
    return CliRunner().invoke(cli, ["run", str(sample["campaign"]), "--out", str(out), "--base-url", fake.base_url,
                                    "--api-key", "k", *extra])


def rows(sample) -> int:
    return sample["members"].read_bytes().count(b"\n") - 1


def test_output_folder_not_writable(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be")
    r = run_cli(sample, blocker / "out", fake_openai)
    assert r.exit_code != 0
    assert "error:" in r.output and "Traceback" not in r.output
    assert str(blocker) in r.output


def test_corrupt_run_store(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.db").write_bytes(b"this is not a database" * 100)
    r = run_cli(sample, out, fake_openai)
    assert r.exit_code == 1, r.output
    assert "run store is unreadable" in r.output and "--restart" in r.output
    r = run_cli(sample, out, fake_openai, "--restart")
    assert r.exit_code == 0, r.output
    assert verify(out)["members"] == rows(sample)


def test_locked_run_store(sample, tmp_path, fake_openai):
    """A second run on the same output folder is refused while the first holds it."""
    fake_openai.responder = responders.copywriter
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; fh = open(sys.argv[1], 'w'); fcntl.flock(fh, fcntl.LOCK_EX); "
        "print('locked', flush=True); time.sleep(30)"), str(out / ".lock")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        r = run_cli(sample, out, fake_openai)
        assert r.exit_code == 1
        assert "another contentgen run is using this output folder" in r.output
    finally:
        holder.kill()
        holder.wait()
    r = run_cli(sample, out, fake_openai)
    assert r.exit_code == 0, r.output


def test_input_file_vanishes_mid_run_then_resumes(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    out = tmp_path / "out"
    env = {**os.environ, "CONTENTGEN_FAILPOINT": "store-commit:20", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "contentgen.cli", "run", str(sample["campaign"]), "--out", str(out),
           "--base-url", fake_openai.base_url, "--api-key", "k", "--chunk-size", "8"]
    p = subprocess.run(cmd, env=env, capture_output=True)
    assert p.returncode == -9  # killed mid-run with some members decided
    moved = sample["recommendations"].with_suffix(".moved")
    shutil.move(sample["recommendations"], moved)
    r = run_cli(sample, out, fake_openai)
    assert r.exit_code == 2
    assert "input file not found" in r.output and "recommendations" in r.output
    shutil.move(moved, sample["recommendations"])
    r = run_cli(sample, out, fake_openai)
    assert r.exit_code == 0, r.output
    assert verify(out)["members"] == rows(sample)


def test_invalid_utf8_and_shifted_column_rows_are_quarantined_in_a_run(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    lines = sample["members"].read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"@", b"\xff\xfe@", 1)
    lines[5] = lines[5].replace(b",", b",,", 1)  # one value too many: the columns shift
    sample["members"].write_bytes(b"".join(lines))
    out = tmp_path / "out"
    r = run_cli(sample, out, fake_openai)
    assert r.exit_code == 0, r.output
    q = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    by_line = {x["line"]: x for x in q if x["kind"] == "member"}
    assert "not valid UTF-8" in by_line[4]["reason"]
    assert "column is shifted" in by_line[6]["reason"]
    assert verify(out)["members"] == rows(sample)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount a small tmpfs")
def test_disk_full_then_resume(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        out = mnt / "out"
        r = run_cli(sample, out, fake_openai, "--chunk-size", "8")
        assert r.exit_code == 1, r.output
        assert "free disk space" in r.output and "re-run" in r.output and "Traceback" not in r.output
        subprocess.run(["mount", "-o", "remount,size=20m", str(mnt)], check=True)
        r = run_cli(sample, out, fake_openai, "--chunk-size", "8")
        assert r.exit_code == 0, r.output
        assert verify(out)["members"] == rows(sample)
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


# -- one member's bug costs that member, never the run (issue 13, item 1) ------------------------------------

def _subrun(sample, out, fake, *extra, env_extra=None, **kw):
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    env.pop("CONTENTGEN_FAILPOINT", None)
    cmd = [sys.executable, "-m", "contentgen.cli", "run", str(sample["campaign"]), "--out", str(out),
           "--base-url", fake.base_url, "--api-key", "k", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)


def _records(out):
    return [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]


def _member_line(sample, n):
    """(line number, member id) of the n-th data row of members.csv."""
    import csv

    with open(sample["members"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return n + 2, rows[n]["member_id"]


def test_a_poison_first_name_costs_one_member_not_the_run(sample, tmp_path, fake_openai):
    """A real poison row: first name `Jo\\1` (a regex group reference where a replacement is built)."""
    from contentgen.assemble import fill_name

    fake_openai.responder = responders.copywriter
    text = sample["members"].read_text(encoding="utf-8").splitlines(keepends=True)
    header = text[0].strip().split(",")
    poisoned = []
    for i in (2, 7, 11):  # three valid rows get the poison name
        cells = text[i].rstrip("\n").split(",")
        cells[header.index("first_name")] = "Jo\\1"
        text[i] = ",".join(cells) + "\n"
        poisoned.append(cells[header.index("member_id")])
    sample["members"].write_text("".join(text), encoding="utf-8")
    out = tmp_path / "out"
    r = run_cli(sample, out, fake_openai)
    assert r.exit_code == 0, r.output
    assert verify(out)["members"] == rows(sample)
    recs = {x["member_id"]: x for x in _records(out) if x["member_id"]}
    try:
        fill_name("Hi {first_name}", "Jo\\1")
        crashes = False
    except Exception:
        crashes = True
    if crashes:  # until the name is handled at its root, each such member ends alone, with the reason
        q = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
        for mid in poisoned:
            rec = recs[mid]
            if rec["outcome"] in ("suppressed",):
                continue
            assert rec["outcome"] in ("invalid", "rejected"), rec
            assert rec["send"] is False
            err = rec["error"]
            assert err["field"] == "first_name" and err["line"] >= 2 and err["file"].endswith("members.csv")
            assert "re.error" in err["error"] and err["code"].startswith("contentgen/")
            assert any(x["member_id"] == mid and x["field"] == "first_name" for x in q)
    others = [x for x in recs.values() if x["member_id"] not in poisoned]
    assert sum(1 for x in others if x["outcome"] in ("approved", "repaired")) > 20


@pytest.mark.parametrize("stage,outcome", [("plan", "invalid"), ("decide", "invalid"), ("answer", "rejected")])
def test_an_engine_error_in_one_member_ends_that_member_only(sample, tmp_path, fake_openai, stage, outcome):
    fake_openai.responder = responders.copywriter
    line, victim = _member_line(sample, 4)
    out = tmp_path / "out"
    p = _subrun(sample, out, fake_openai, env_extra={"CONTENTGEN_POISON": f"{stage}:{victim}"})
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert verify(out)["members"] == rows(sample)
    rec = next(x for x in _records(out) if x["member_id"] == victim)
    assert rec["outcome"] == outcome and rec["send"] is False, rec
    assert rec["error"]["line"] == line and "injected engine fault" in rec["error"]["error"]
    assert "the rest of the run went on" in rec["reason"]
    q = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    assert any(x["line"] == line and x["member_id"] == victim and "injected" in x["reason"] for x in q)
    decided = [x for x in _records(out) if x["member_id"] != victim and x["outcome"] in ("approved", "repaired")]
    assert len(decided) > 20


def test_an_engine_error_in_every_member_stops_the_run(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    out = tmp_path / "out"
    p = _subrun(sample, out, fake_openai, env_extra={"CONTENTGEN_POISON": "plan:*"})
    assert p.returncode == 1, p.stderr
    assert "failed inside contentgen" in p.stderr and "bug" in p.stderr and "Traceback" not in p.stderr
    assert not (out / "messages.jsonl").exists()


# -- inputs are frozen for a run (issue 13, item 2) -----------------------------------------------------------

def test_members_file_rewritten_mid_run_ends_with_exit_4_and_no_export(tmp_path, fake_openai):
    sample = write_sample_data(tmp_path / "data", 300, seed=5)
    fake_openai.responder = responders.copywriter
    fake_openai.reset(latency_s=0.05)
    fake_openai.responder = responders.copywriter
    original = sample["members"].read_bytes()
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CONTENTGEN_FAILPOINT", None)
    p = subprocess.Popen([sys.executable, "-m", "contentgen.cli", "run", str(sample["campaign"]), "--out", str(out),
                          "--base-url", fake_openai.base_url, "--api-key", "k", "--concurrency", "2",
                          "--chunk-size", "8"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while decided_members(out) < 10 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert p.poll() is None, "the run ended before the file could change"
        cut = b"".join(original.splitlines(keepends=True)[:101])  # rewritten in place: 100 rows left
        with open(sample["members"], "r+b") as fh:
            fh.truncate(0)
            fh.write(cut)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 4, err
    assert "inputs changed while the run was using them" in err and str(sample["members"]) in err
    assert "Traceback" not in err
    assert not (out / "messages.jsonl").exists() and not (out / "manifest.json").exists()
    # the original file back: the run continues and completes with every row
    sample["members"].write_bytes(original)
    r = run_cli(sample, out, fake_openai)
    assert r.exit_code == 0, r.output
    assert verify(out)["members"] == 300


def test_verify_rechecks_the_inputs_when_present(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    out = tmp_path / "out"
    assert run_cli(sample, out, fake_openai).exit_code == 0
    assert verify(out)["members"] == rows(sample)
    original = sample["members"].read_bytes()
    sample["members"].write_bytes(b"".join(original.splitlines(keepends=True)[:21]))
    with pytest.raises(Exception) as e:
        verify(out)
    assert "members" in str(e.value) and "SHA-256" in str(e.value) and "20 member rows" in str(e.value)
    r = CliRunner().invoke(cli, ["verify", str(out)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    sample["members"].write_bytes(original)
    assert verify(out)["members"] == rows(sample)


# -- the store's permissions (issue 13, item 5) ---------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the command as another user")
def test_permission_denied_store_says_fix_the_permission(sample, tmp_path, fake_openai):
    import pwd
    import tempfile

    fake_openai.responder = responders.copywriter
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="contentgen-perm-"))
    try:
        base.chmod(0o755)
        data = write_sample_data(base / "data", 10, seed=5)
        for f in (base / "data").iterdir():
            f.chmod(0o644)
        (base / "data").chmod(0o755)
        out = base / "out"
        assert _subrun(data, out, fake_openai).returncode == 0  # written by root: run.db is root's, 0644
        out.chmod(0o777)
        (out / "run.db").chmod(0o600)
        (out / ".lock").chmod(0o666)
        p = _subrun(data, out, fake_openai, preexec_fn=lambda: (os.setgid(nobody.pw_gid), os.setuid(nobody.pw_uid)))
        assert p.returncode == 1, p.stderr
        assert "permission" in p.stderr and "fix the permission" in p.stderr and "Traceback" not in p.stderr
        assert "do not --restart" in p.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)
