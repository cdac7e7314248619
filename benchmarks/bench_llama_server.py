"""The 20-member demo campaign on the embedded path and through llama-cpp-python's own server (``--base-url``,
no other flag), as a user runs them: exit code, outcomes, and the schema-gate pass rate of first attempts.

    flock /work/heavy.lock .venv/bin/python benchmarks/bench_llama_server.py [--members 20] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contentgen.llm.local import _free_port, default_gguf  # noqa: E402
from contentgen.sample_data import write_sample_data  # noqa: E402

CLI = [sys.executable, "-m", "contentgen.cli"]


def first_attempts(out: Path) -> tuple[int, int]:
    db = sqlite3.connect(out / "run.db")
    try:
        rows = list(db.execute("SELECT findings FROM attempts WHERE n=0 AND kind='generate'"))
    finally:
        db.close()
    ok = sum(1 for (fs,) in rows if not any(f["gate"] == "schema" and f["severity"] == "error"
                                            for f in json.loads(fs)))
    return ok, len(rows)


def run(cmd: list[str], out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env["PYTHONPATH"] = str(ROOT)
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    res = {"exit": p.returncode, "wall_s": wall}
    if (out / "messages.jsonl").exists():
        recs = [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]
        res["outcomes"] = dict(Counter(r["outcome"] for r in recs))
        ok, n = first_attempts(out)
        res["first_ok"], res["first_n"] = ok, n
        m = json.loads((out / "manifest.json").read_text())
        res["capabilities"] = (m.get("llm") or {}).get("capabilities", {})
    else:
        res["stderr"] = p.stderr[-1500:]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    print("$ .venv/bin/python benchmarks/bench_llama_server.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_sample_data(tmp / "data", args.members, seed=args.seed)     # the demo's data
        port = _free_port()
        log = open(tmp / "server.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf()),
                                   "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}/v1"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("llama-cpp-python's server did not start")
                time.sleep(0.25)
            results = {
                "llama.cpp server (--base-url)": run(CLI + ["run", str(paths["campaign"]), "--out",
                                                            str(tmp / "server"), "--base-url", base], tmp / "server"),
            }
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()
        results["embedded"] = run(CLI + ["run", str(paths["campaign"]), "--out", str(tmp / "embedded")],
                                  tmp / "embedded")
    print(f"{args.members}-member demo data (seed {args.seed}); default campaign settings")
    print("| path | exit | first attempts passing the schema gate | outcomes | model-written (approved + repaired) "
          "| wall |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        if "outcomes" not in r:
            print(f"| {name} | {r['exit']} | - | - | - | {r['wall_s']:.0f} s |  {r.get('stderr', '')!r}")
            continue
        o = r["outcomes"]
        written = o.get("approved", 0) + o.get("repaired", 0)
        sent = written + o.get("fallback", 0)
        share = f"{written}/{sent}" if sent else "0"
        print(f"| {name} | {r['exit']} | {r['first_ok']}/{r['first_n']} ({100 * r['first_ok'] / max(1, r['first_n']):.0f}%)"
              f" | {', '.join(f'{k} {v}' for k, v in sorted(o.items()))} | {share} | {r['wall_s']:.0f} s |")
    caps = results["llama.cpp server (--base-url)"].get("capabilities")
    if caps:
        print(f"server path negotiated: server={caps.get('server')} structured_output={caps.get('structured_output')} "
              f"concurrency={caps.get('concurrency')} changes={len(caps.get('changes', []))}")


if __name__ == "__main__":
    main()
