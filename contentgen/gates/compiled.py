"""Compiled gates: mypyc-built extension modules used only while they match the sources.

``scripts/build_gates.py`` (run by ``scripts/setup.sh``) compiles the gates with mypyc into
``build/mypyc-gates/`` at the repo root, outside the source tree, with a manifest that records
a hash of every ``.py`` under ``contentgen/gates/`` it was built from. When ``contentgen.gates``
is imported, :func:`install` reads that manifest and, only if the hash matches the sources as they
are now (and the build is for this Python), puts a finder first on ``sys.meta_path`` that loads the
listed modules from their extension files; otherwise nothing is installed and every module is
imported from its ``.py`` (pure Python). So an edited ``.py`` takes effect at once, without a
rebuild: the whole build is set aside until it is rebuilt, never one stale module. The finder is
installed in pure mode too, so that an extension file left beside the sources (an in-place mypyc
run) is never imported either.

``CONTENTGEN_PURE_GATES=1`` forces pure Python; ``CONTENTGEN_GATES_BUILD=DIR`` reads the build
from DIR instead. :data:`MODE` says which ran ("compiled ..." or "pure (why)").

What stays interpreted even in a build (:data:`INTERPRETED`): the package ``__init__`` files, this
module, and the modules that define pydantic models (the rule model, the accept list, the params base
``engine/plugin_models.py``, and each kind's and check's ``<module>_models.py``): mypyc does not
compile pydantic models. Kinds and checks are native classes (registered by their ``name``
attribute, not by a class decorator: see :mod:`.engine.registry`).

This module uses the standard library only: the build script loads it by path.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

GATES_DIR = Path(__file__).resolve().parent
#: the repo root's build folder (ignored by git)
DEFAULT_BUILD_DIR = GATES_DIR.parents[1] / "build" / "mypyc-gates"
MANIFEST = "manifest.json"
#: paths under contentgen/gates/ that are never compiled (besides every __init__.py and *_models.py)
INTERPRETED = frozenset({"compiled.py", "engine/model.py", "engine/accept.py"})

#: what :func:`install` decided: "compiled (N modules, build HASH)" or "pure (why)"
MODE = "pure (not installed)"


def is_interpreted(rel: str) -> bool:
    """Whether a module (its path under contentgen/gates/, "/"-separated) stays interpreted."""
    name = rel.rsplit("/", 1)[-1]
    return rel in INTERPRETED or name == "__init__.py" or name.endswith("_models.py")


def source_files(gates_dir: Path = GATES_DIR) -> list[Path]:
    """Every ``.py`` under the gates package, sorted by relative path."""
    return sorted((p for p in gates_dir.rglob("*.py") if "__pycache__" not in p.parts),
                  key=lambda p: p.relative_to(gates_dir).as_posix())


def sources_hash(gates_dir: Path = GATES_DIR) -> str:
    """sha256 over every ``.py`` under the gates package (relative path and bytes): a build is
    used only for the exact sources it was compiled from, interpreted modules included (the
    compiled code was type-checked against them)."""
    h = hashlib.sha256()
    for p in source_files(gates_dir):
        h.update(p.relative_to(gates_dir).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def build_tag() -> str:
    """What an extension module is built for: the interpreter and its extension suffix."""
    return f"{sys.implementation.cache_tag} {importlib.machinery.EXTENSION_SUFFIXES[0]}"


def build_dir() -> Path:
    return Path(os.environ.get("CONTENTGEN_GATES_BUILD") or DEFAULT_BUILD_DIR)


def usable_build(build: Path, gates_dir: Path = GATES_DIR) -> tuple[dict[str, Path], str]:
    """The extension file of each compiled module (module name -> path) when the build in
    ``build`` matches the sources in ``gates_dir`` and this interpreter; else ({}, why not)."""
    if os.environ.get("CONTENTGEN_PURE_GATES", "") not in ("", "0"):
        return {}, "CONTENTGEN_PURE_GATES is set"
    manifest = build / MANIFEST
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        files = {str(k): build / str(v) for k, v in dict(info["modules"]).items()}
        tag, built_from = str(info["build_tag"]), str(info["sources_hash"])
    except FileNotFoundError:
        return {}, f"no build in {build} (scripts/build_gates.py makes one)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return {}, f"unreadable build manifest {manifest}: {e}"
    if tag != build_tag():
        return {}, f"the build is for {tag}, this is {build_tag()}"
    if built_from != sources_hash(gates_dir):
        return {}, "the sources changed since the build (run scripts/build_gates.py)"
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        return {}, f"the build is incomplete ({missing[0]} is missing)"
    return files, "ok"


PACKAGE = __name__.rpartition(".")[0]  # contentgen.gates


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds every gates module: the modules of a usable build (and mypyc's shared library) at
    their extension files, every other one at its ``.py`` under :data:`GATES_DIR`, never at an
    extension file beside the sources (Python's own finder would prefer one, stale or not)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        p = self.files.get(fullname)
        if p is not None:
            return importlib.util.spec_from_file_location(
                fullname, str(p), loader=importlib.machinery.ExtensionFileLoader(fullname, str(p)))
        if not fullname.startswith(PACKAGE + "."):
            return None
        base = GATES_DIR.joinpath(*fullname[len(PACKAGE) + 1:].split("."))
        if path is None or not any(Path(p).resolve() == base.parent for p in path):
            return None  # another copy of the package (imported after this one): its own finder decides
        if (base / "__init__.py").is_file():
            return importlib.util.spec_from_file_location(fullname, str(base / "__init__.py"),
                                                          submodule_search_locations=[str(base)])
        if base.with_suffix(".py").is_file():
            return importlib.util.spec_from_file_location(fullname, str(base.with_suffix(".py")))
        return None


def install() -> str:
    """Use the compiled modules if the build matches the sources (see the module docstring);
    called by ``contentgen/gates/__init__.py`` before it imports any other gates module."""
    global MODE
    if any(isinstance(f, CompiledFinder) for f in sys.meta_path):
        return MODE
    build = build_dir()
    files, why = usable_build(build)
    sys.meta_path.insert(0, CompiledFinder(files))
    if not files:
        MODE = f"pure ({why})"
        return MODE
    n = sum(1 for k in files if k.startswith("contentgen."))
    MODE = f"compiled ({n} modules, build {build})"
    return MODE
