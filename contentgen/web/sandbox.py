"""Prompt templates from the browser, rendered where a runaway one can't hurt the studio.

A copywriter's variant is Jinja written in a text box. The sandboxed
environment stops it touching Python, but not from looping for an hour
(``{% for a in range(99999) %}{% for b in range(99999) %}``) or writing
gigabytes. ``RenderWorker`` renders in a child process: each render has a
time limit (the child is killed and replaced when it passes it), the output
is capped while it streams, and the child's address space is capped.
``BoundedPrompts`` is ``Prompts`` with every render going through a worker.
The child is ``python -m contentgen.web.sandbox`` on pipes (length-prefixed
frames: pickled requests in, JSON replies out).
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import TemplateError
from ..prompts import Prompts

TIMEOUT_S = 3.0
MAX_OUTPUT = 256 * 1024
MAX_MEMORY = 1 << 30


def _serve(max_output: int, max_memory: int) -> None:  # runs in the child: python -m contentgen.web.sandbox
    import pickle
    import resource

    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
    except (ValueError, OSError):
        pass
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    envs: dict[str, jinja2.Environment] = {}

    def reply(kind: str, text: str) -> None:
        data = json.dumps({"kind": kind, "text": text}).encode()
        out.write(struct.pack(">I", len(data)) + data)
        out.flush()

    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        folder, name, ctx = pickle.loads(inp.read(struct.unpack(">I", head)[0]))
        try:
            env = envs.get(folder)
            if env is None:
                env = envs[folder] = ImmutableSandboxedEnvironment(
                    loader=jinja2.FileSystemLoader(folder), undefined=jinja2.StrictUndefined, autoescape=False,
                    keep_trailing_newline=False)
            parts: list[str] = []
            size = 0
            for chunk in env.get_template(name).generate(**ctx):
                size += len(chunk)
                if size > max_output:
                    raise OverflowError(f"the output passed {max_output // 1024} KiB")
                parts.append(chunk)
            reply("ok", "".join(parts))
        except jinja2.UndefinedError as e:
            reply("undefined", e.message or str(e))
        except MemoryError:
            reply("error", "it needed more memory than a prompt may use")
        except RecursionError:
            reply("error", "it nests too deeply")
        except Exception as e:  # noqa: BLE001  (any template error goes back as text)
            reply("error", f"{type(e).__name__}: {e}")


class RenderWorker:
    """One child process (``python -m contentgen.web.sandbox``) rendering templates one at a time;
    killed and replaced after a timeout or a crash."""

    def __init__(self, timeout: float = TIMEOUT_S, max_output: int = MAX_OUTPUT, max_memory: int = MAX_MEMORY):
        self.timeout, self.max_output, self.max_memory = timeout, max_output, max_memory
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._used = False

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "contentgen.web.sandbox", str(self.max_output), str(self.max_memory)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self._used = False

    def _kill(self) -> None:
        p, self._proc = self._proc, None
        if p is not None:
            p.kill()
            p.wait(5)
            for f in (p.stdin, p.stdout):
                try:
                    f.close()
                except OSError:
                    pass

    def _read(self, n: int, deadline: float) -> bytes | None:
        fd = self._proc.stdout.fileno()
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def render(self, folder: str, name: str, ctx: dict[str, Any]) -> str:
        import pickle

        path = str(Path(folder) / name)
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._kill()
                self._start()
            # the first render after a start also pays for the child's imports
            deadline = time.monotonic() + self.timeout + (0 if self._used else 20.0)
            self._used = True
            try:
                data = pickle.dumps((folder, name, ctx))
                self._proc.stdin.write(struct.pack(">I", len(data)) + data)
                self._proc.stdin.flush()
                head = self._read(4, deadline)
                body = self._read(struct.unpack(">I", head)[0], deadline) if head else None
            except (EOFError, OSError):
                self._kill()
                raise TemplateError("the template renderer stopped (the template used too much memory?)",
                                    file=path, hint="simplify the template") from None
            if body is None:
                self._kill()
                raise TemplateError(f"the template took longer than {self.timeout:g} s to render "
                                    "(a loop that never ends?)", file=path,
                                    hint="prompts render in milliseconds: remove the long loop")
        reply = json.loads(body)
        kind, text = reply["kind"], reply["text"]
        if kind == "ok":
            return text
        if kind == "undefined":
            raise TemplateError(f"template uses an undefined variable: {text}", file=path,
                                hint="use only the variables documented in prompts/README.md")
        raise TemplateError(f"template failed to render: {text}", file=path)

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                try:
                    self._proc.stdin.close()  # the child sees EOF and exits
                    self._proc.wait(2)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._kill()


class BoundedPrompts(Prompts):
    """``Prompts`` whose templates render in a ``RenderWorker`` (time- and size-bounded)."""

    def __init__(self, prompts_dir: Path, campaign, worker: RenderWorker):
        self._worker = worker
        super().__init__(prompts_dir, campaign)

    def _render(self, name: str, **ctx: Any) -> str:
        self._template(name)  # syntax errors with their line, as Prompts reports them
        return self._worker.render(str(self.dir), name, ctx).strip()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
