"""Faults with a clear error, nothing lost, and a run that resumes afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.export import verify
from contentgen.sample_data import write_sample_data
from tests import responders
from tests.util import REPO

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
