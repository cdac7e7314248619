"""The mypyc-built gates (scripts/build_gates.py, contentgen/gates/compiled.py): used only while
built from the current sources, never a stale module; and the pure-Python gates give the golden
findings too, so that both modes are covered whichever one this run imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import contentgen.gates as gates
from contentgen.gates import compiled

ROOT = Path(__file__).resolve().parents[1]
BUILD = compiled.build_dir()
HAVE_BUILD = bool(compiled.usable_build(BUILD)[0])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONTENTGEN_PURE_GATES", "CONTENTGEN_GATES_BUILD")}
    env.update(extra)
    return env


def _fake_build(tmp_path: Path, gates_dir: Path) -> Path:
    """A build folder whose manifest names gates_dir's current sources and one 'extension'."""
    build = tmp_path / "build"
    (build / "contentgen" / "gates").mkdir(parents=True)
    ext = "contentgen/gates/text" + compiled.build_tag().split(" ")[1]
    (build / ext).write_bytes(b"")
    (build / compiled.MANIFEST).write_text(json.dumps({
        "sources_hash": compiled.sources_hash(gates_dir), "build_tag": compiled.build_tag(),
        "modules": {"contentgen.gates.text": ext}}), encoding="utf-8")
    return build


def _copy_gates(tmp_path: Path) -> Path:
    dest = tmp_path / "gates"
    shutil.copytree(compiled.GATES_DIR, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_build_used_only_for_the_sources_it_was_built_from(tmp_path, monkeypatch):
    monkeypatch.delenv("CONTENTGEN_PURE_GATES", raising=False)
    src = _copy_gates(tmp_path)
    build = _fake_build(tmp_path, src)
    files, why = compiled.usable_build(build, src)
    assert set(files) == {"contentgen.gates.text"}, why
    # one edited byte in any gates .py (a compiled module or an interpreted one) sets the build aside
    for rel in ("checks/voice.py", "engine/kinds/existence_models.py"):
        p = src / rel
        original = p.read_text(encoding="utf-8")
        p.write_text(original + "\n# edited\n", encoding="utf-8")
        files, why = compiled.usable_build(build, src)
        assert files == {} and "sources changed" in why, rel
        p.write_text(original, encoding="utf-8")
        assert compiled.usable_build(build, src)[0]
    # a new module too
    (src / "checks" / "extra.py").write_text("X = 1\n", encoding="utf-8")
    assert compiled.usable_build(build, src)[0] == {}


def test_build_for_another_python_or_incomplete_or_forced_off_is_not_used(tmp_path, monkeypatch):
    monkeypatch.delenv("CONTENTGEN_PURE_GATES", raising=False)
    src = _copy_gates(tmp_path)
    build = _fake_build(tmp_path, src)
    monkeypatch.setenv("CONTENTGEN_PURE_GATES", "1")
    assert compiled.usable_build(build, src) == ({}, "CONTENTGEN_PURE_GATES is set")
    monkeypatch.delenv("CONTENTGEN_PURE_GATES")
    info = json.loads((build / compiled.MANIFEST).read_text(encoding="utf-8"))
    (build / compiled.MANIFEST).write_text(json.dumps({**info, "build_tag": "cpython-399 .so"}), encoding="utf-8")
    assert compiled.usable_build(build, src)[0] == {}
    (build / compiled.MANIFEST).write_text(json.dumps(info), encoding="utf-8")
    next((build / "contentgen" / "gates").iterdir()).unlink()
    assert "incomplete" in compiled.usable_build(build, src)[1]
    assert "no build" in compiled.usable_build(tmp_path / "nothing", src)[1]


def _imported(code_root: Path, build: Path, **env: str) -> dict[str, str]:
    prog = ("import json, contentgen.gates as g, contentgen.gates.text as t, contentgen.gates.checks.voice as v\n"
            "print(json.dumps({'mode': g.GATES_MODE, 'text': t.__file__, 'voice': v.__file__,"
            " 'edited': str(getattr(t, 'EDITED', None))}))")
    out = subprocess.run([sys.executable, "-c", prog], cwd=code_root, capture_output=True, text=True, timeout=120,
                         env=_env(PYTHONPATH=str(code_root), CONTENTGEN_GATES_BUILD=str(build), **env))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_extension_file_beside_the_sources_is_never_imported(tmp_path):
    """An extension module left in the source tree (an in-place mypyc run) would win over the .py
    in Python's own finder; the gates' finder loads the .py (here the stray file is not even valid)."""
    code = tmp_path / "code"
    shutil.copytree(ROOT / "contentgen", code / "contentgen", ignore=shutil.ignore_patterns("__pycache__"))
    suffix = compiled.build_tag().split(" ")[1]
    for rel in ("text", "checks/voice"):
        (code / "contentgen" / "gates" / (rel + suffix)).write_bytes(b"stale")
    for env in ({"CONTENTGEN_PURE_GATES": "1"}, {}):  # forced pure; and no build at all
        got = _imported(code, tmp_path / "no-build", **env)
        assert got["mode"].startswith("pure") and got["text"] == str(code / "contentgen" / "gates" / "text.py"), got
        assert got["voice"] == str(code / "contentgen" / "gates" / "checks" / "voice.py"), got


@pytest.mark.skipif(not HAVE_BUILD, reason="no compiled gates matching the sources (scripts/build_gates.py; "
                                            "setup.sh runs it when a C compiler is there)")
def test_edited_source_runs_at_once_without_the_build(tmp_path):
    """A copy of the package with the real build: compiled as it is; one gates .py edited -> every
    gates module from its .py (the edit runs), until rebuilt."""
    code = tmp_path / "code"
    shutil.copytree(ROOT / "contentgen", code / "contentgen", ignore=shutil.ignore_patterns("__pycache__"))
    got = _imported(code, BUILD)
    assert got["mode"].startswith("compiled"), got
    assert got["text"].endswith(".so") and got["voice"].endswith(".so") and str(BUILD) in got["text"], got
    pure = _imported(code, BUILD, CONTENTGEN_PURE_GATES="1")
    assert pure["text"] == str(code / "contentgen" / "gates" / "text.py"), pure
    t = code / "contentgen" / "gates" / "text.py"
    t.write_text(t.read_text(encoding="utf-8") + "\nEDITED = 'yes'\n", encoding="utf-8")
    got = _imported(code, BUILD)
    assert got["mode"].startswith("pure (the sources changed"), got
    assert got["edited"] == "yes" and got["text"] == str(t), got
    assert got["voice"] == str(code / "contentgen" / "gates" / "checks" / "voice.py"), got


def test_pure_gates_give_the_golden_findings():
    """This run imports the compiled gates when a matching build exists: then the golden test
    runs once more here with CONTENTGEN_PURE_GATES=1 (without a build, this run is the pure one)."""
    if not gates.GATES_MODE.startswith("compiled"):
        pytest.skip(f"this run's gates are already pure Python: {gates.GATES_MODE}")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_golden_findings.py"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=_env(CONTENTGEN_PURE_GATES="1", PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout, out.stdout[-500:]


def test_another_copy_imported_later_gets_its_own_modules(tmp_path):
    """A process that drops one copy of the package and imports another (bench_gates' children do
    it in a fresh process; a tool might in one): the first copy's finder leaves the second alone."""
    for name in ("a", "b"):
        shutil.copytree(ROOT / "contentgen", tmp_path / name / "contentgen", ignore=shutil.ignore_patterns("__pycache__"))
    prog = ("import sys\n"
            f"sys.path.insert(0, {str(tmp_path / 'a')!r})\n"
            "import contentgen.gates.text\n"
            "for m in [m for m in sys.modules if m == 'contentgen' or m.startswith('contentgen.')]:\n"
            "    del sys.modules[m]\n"
            f"sys.path.insert(0, {str(tmp_path / 'b')!r})\n"
            "import contentgen.gates.text, contentgen.gates.checks.voice\n"
            "print(contentgen.gates.text.__file__, contentgen.gates.checks.voice.__file__)\n")
    out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120,
                         env=_env(CONTENTGEN_PURE_GATES="1"))
    assert out.returncode == 0, out.stderr
    text, voice = out.stdout.split()
    assert text == str(tmp_path / "b" / "contentgen" / "gates" / "text.py"), text
    assert voice == str(tmp_path / "b" / "contentgen" / "gates" / "checks" / "voice.py"), voice
