"""Build a mypyc-compiled copy of this checkout's gates in a scratch folder (an experiment for issue
16's 2x, not how the package ships), to measure it side by side with bench_gates.py:

    .venv/bin/python benchmarks/gates_mypyc.py /tmp/gates-mypyc
    BENCH_RUNS=5 flock /work/heavy.lock .venv/bin/python benchmarks/bench_gates.py 2000 \\
        --baseline /tmp/gates-mypyc --baseline-rev 8ea3975 --modes steady,cached

The copy holds contentgen/, brand_rules/, compliance/ and pyproject.toml. Before compiling, what
mypyc cannot compile as written is changed in the copy only (behaviour unchanged: the copy's gates
give the same findings, see RESULTS.md):

- pydantic models (each kind's Spec, each check's Params) move from their module to a sibling
  ``<module>_models.py`` that stays interpreted, and are imported back (validators, ``Field()``
  defaults and ``Literal`` annotations break inside compiled modules);
- ``Kind``, ``Check`` and ``_Span(tuple)`` become non-native classes (decorated subclasses must be);
- a surrogate string literal becomes ``chr()``; HyperscanPrefilter's attributes are declared;
- ``import pydantic.main`` is added where pydantic is imported (a mypyc code-generation gap).

Then every gates module except the rule model, the plugin bases, the accept list and the
``*_models.py`` is compiled with mypyc (gcc and the Python headers are needed; ~1-2 minutes).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYDANTIC_BASES = {"BaseModel", "Strict", "Params", "NoParams"}
INTERPRETED = ("engine/model.py", "engine/plugin.py", "engine/accept.py")


def copy_tree(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    for name in ("contentgen", "brand_rules", "compliance"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def split_models(gates: Path) -> dict[str, str]:
    """Move pydantic model classes to ``<module>_models.py``; returns class name -> new module stem."""
    moved_to: dict[str, str] = {}
    for p in sorted(gates.rglob("*.py")):
        rel = p.relative_to(gates).as_posix()
        if rel in INTERPRETED:
            continue
        src = p.read_text(encoding="utf-8")
        tree = ast.parse(src)
        lines = src.splitlines(keepends=True)
        names = set(PYDANTIC_BASES)
        changed = True
        while changed:  # classes whose base is a model class, also ones defined in this module
            changed = False
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and node.name not in names and any(
                        (b.id if isinstance(b, ast.Name) else getattr(b, "attr", None)) in names for b in node.bases):
                    names.add(node.name)
                    changed = True
        moved = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in names - PYDANTIC_BASES]
        if not moved:
            continue
        imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        cuts = [((n.decorator_list[0].lineno if n.decorator_list else n.lineno) - 1, n.end_lineno or n.lineno)
                for n in moved]
        first_cut = min(a for a, _ in cuts)
        consts = [n for n in tree.body if isinstance(n, ast.Assign) and n.lineno - 1 < first_cut]
        head = "".join("".join(lines[n.lineno - 1:n.end_lineno]) for n in imports)
        head = head.replace("from __future__ import annotations\n", "")
        body = "\n\n".join("".join(lines[a:b]) for a, b in cuts)
        const_src = "".join("".join(lines[n.lineno - 1:n.end_lineno]) for n in consts)
        stem = p.stem + "_models"
        p.with_name(stem + ".py").write_text(
            "from __future__ import annotations\n" + head + "\n" + const_src + "\n\n" + body, encoding="utf-8")
        kept = [line for i, line in enumerate(lines) if not any(a <= i < b for a, b in cuts)]
        last_import = max(n.end_lineno or n.lineno for n in imports)
        kept.insert(last_import, f"from .{stem} import {', '.join(n.name for n in moved)}  # noqa: F401\n")
        p.write_text("".join(kept), encoding="utf-8")
        for n in moved:
            moved_to[n.name] = stem
    # other modules importing a moved class from its old module import it from the new one
    for p in gates.rglob("*.py"):
        src = p.read_text(encoding="utf-8")
        new = re.sub(r"^from \.(\w+) import (\w+)$",
                     lambda m: (f"from .{moved_to[m.group(2)]} import {m.group(2)}"
                                if moved_to.get(m.group(2)) == m.group(1) + "_models" else m.group(0)),
                     src, flags=re.M)
        if new != src:
            p.write_text(new, encoding="utf-8")
    return moved_to


def _edit(path: Path, old: str, new: str) -> None:
    src = path.read_text(encoding="utf-8")
    if old not in src:
        sys.exit(f"{path}: expected text not found ({old[:40]!r}): the recipe needs updating")
    path.write_text(src.replace(old, new, 1), encoding="utf-8")


def fix_for_mypyc(gates: Path) -> None:
    future = "from __future__ import annotations\n"
    attr = future + "\nfrom mypy_extensions import mypyc_attr\n"
    _edit(gates / "engine/plugin.py", future, attr)
    _edit(gates / "engine/plugin.py", "\nclass Kind:", "\n@mypyc_attr(native_class=False)\nclass Kind:")
    _edit(gates / "engine/plugin.py", "\nclass Check:", "\n@mypyc_attr(native_class=False)\nclass Check:")
    _edit(gates / "checks/voice.py", future, attr)
    _edit(gates / "checks/voice.py", "\nclass _Span(", "\n@mypyc_attr(native_class=False)\nclass _Span(")
    _edit(gates / "engine/matcher.py", '"\\ud800" <= c <= "\\udfff"', "chr(0xD800) <= c <= chr(0xDFFF)")
    _edit(gates / "engine/matcher.py", '    name = "hyperscan"\n',
          '    name = "hyperscan"\n    _hs: Any\n    _local: Any\n    db: Any\n')
    for p in gates.rglob("*.py"):
        src = p.read_text(encoding="utf-8")
        if "pydantic" in src and "import pydantic.main" not in src and future in src:
            p.write_text(src.replace(future, future + "\nimport pydantic.main  # noqa: F401\n", 1), encoding="utf-8")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dest = Path(sys.argv[1]).resolve()
    copy_tree(dest)
    gates = dest / "contentgen" / "gates"
    split_models(gates)
    fix_for_mypyc(gates)
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "mypy"), "--strict", "contentgen/gates"], cwd=dest, check=True)
    files = sorted(p.relative_to(dest).as_posix() for p in gates.rglob("*.py")
                   if p.relative_to(gates).as_posix() not in INTERPRETED and not p.name.endswith("_models.py"))
    subprocess.run([str(bin_dir / "mypyc"), *files], cwd=dest, check=True, stdout=subprocess.DEVNULL)
    print(f"{len(files)} gates modules compiled in {dest}")


if __name__ == "__main__":
    main()
