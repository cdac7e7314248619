"""Compile the gates with mypyc into build/mypyc-gates/ (outside the source tree).

    .venv/bin/python scripts/build_gates.py          # build unless the build matches the sources
    .venv/bin/python scripts/build_gates.py --force  # build anyway

The package, rule folders and pyproject.toml are copied to a staging folder, mypyc compiles every
gates module but the interpreted ones (contentgen/gates/compiled.py says which and why) there, and
the extension files move to build/mypyc-gates/ with manifest.json: the hash of the sources they
were built from, and each module's file. ``contentgen.gates`` uses them only while that hash
matches its sources (else pure Python). The new build replaces the old one only when it is
complete; a failed build removes the old one too (it could only be for other sources), so the
gates run as pure Python.

Exit status 0 when a build matching the sources is in place; 1 with one line on stderr saying why
not (no mypyc, no C compiler, a compile error: the log is in build/mypyc-gates.log).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATES = ROOT / "contentgen" / "gates"


def _compiled_module():  # type: ignore[no-untyped-def]
    """contentgen/gates/compiled.py, loaded by path (importing contentgen.gates would load the gates)."""
    spec = importlib.util.spec_from_file_location("_gates_compiled", GATES / "compiled.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fail(msg: str) -> int:
    print(f"gates not compiled: {msg}; they run as pure Python", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="build even if the build matches the sources")
    ap.add_argument("--out", type=Path, default=None, help="build folder (default build/mypyc-gates)")
    args = ap.parse_args(argv)
    cm = _compiled_module()
    out: Path = (args.out or cm.DEFAULT_BUILD_DIR).resolve()
    log = out.with_name(out.name + ".log")
    os.environ.pop("CONTENTGEN_PURE_GATES", None)
    if not args.force:
        files, _why = cm.usable_build(out, GATES)
        if files:
            print(f"gates: the build in {out} matches the sources (nothing to do)")
            return 0
    try:
        import mypyc  # noqa: F401
    except ImportError:
        return fail("mypyc is not installed (pip install mypy)")
    staging = out.with_name(out.name + ".staging")
    new = out.with_name(out.name + ".new")
    for d in (staging, new):
        shutil.rmtree(d, ignore_errors=True)
    staging.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    shutil.copytree(ROOT / "contentgen", staging / "contentgen", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", staging / "pyproject.toml")
    sgates = staging / "contentgen" / "gates"
    built_from = cm.sources_hash(sgates)
    modules = [p.relative_to(sgates).as_posix() for p in cm.source_files(sgates)]
    compiled = [m for m in modules if not cm.is_interpreted(m)]
    t0 = time.monotonic()
    with open(log, "w", encoding="utf-8") as fh:
        r = subprocess.run([sys.executable, "-m", "mypyc", *(f"contentgen/gates/{m}" for m in compiled)],
                           cwd=staging, stdout=fh, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        tail = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()][-1:]
        return fail(f"mypyc failed ({tail[0][:160] if tail else 'no output'}; log: {log})")
    files: dict[str, str] = {}
    new.mkdir(parents=True)
    for m in compiled:
        name = "contentgen.gates." + m[:-3].replace("/", ".")
        stem = sgates / m[:-3]
        exts = list(stem.parent.glob(stem.name + ".*.so")) + list(stem.parent.glob(stem.name + ".*.pyd"))
        if len(exts) != 1:
            return fail(f"mypyc left {len(exts)} extension files for {m}")
        rel = exts[0].relative_to(staging)
        (new / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(exts[0]), new / rel)
        files[name] = rel.as_posix()
    for lib in list(staging.glob("*__mypyc.*.so")) + list(staging.glob("*__mypyc.*.pyd")):
        shutil.move(str(lib), new / lib.name)
        files[lib.name.split(".", 1)[0]] = lib.name
    manifest = {"sources_hash": built_from, "build_tag": cm.build_tag(), "modules": files,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "compile_seconds": round(time.monotonic() - t0, 1)}
    (new / cm.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    new.rename(out)
    shutil.rmtree(staging, ignore_errors=True)
    n = sum(1 for k in files if k.startswith("contentgen."))
    now = cm.sources_hash(GATES)
    state = "" if now == built_from else " (the sources changed during the build: pure Python until rebuilt)"
    print(f"gates: {n} modules compiled with mypyc in {manifest['compile_seconds']} s into {out}{state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
