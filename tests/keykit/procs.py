"""Subprocesses for the key tests: each in its own process group, killed with its children
on the way out whatever happens (a hung shell, an openssl waiting on input, a timeout)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def run(args: Sequence[str | Path], *, timeout: float = 120, input: bytes | None = None,
        **options: Any) -> subprocess.CompletedProcess[str]:
    """Like subprocess.run(capture_output=True, text=True) in a new session; `input` is bytes."""
    proc = subprocess.Popen([str(a) for a in args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, **options)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       out.decode(errors="replace"), err.decode(errors="replace"))


STUB_CURL = """#!/bin/sh
# Records its arguments, one per NUL-terminated record, instead of calling anything.
for arg in "$@"; do printf '%s\\0' "$arg"; done >"$CURL_ARGS"
"""


def paste(line: str, shell: Sequence[str], workdir: Path,
          env: dict[str, str] | None = None) -> list[str]:
    """Run a printed command line as a person pasting it would, in `shell`, with a stub `curl`
    first on PATH; the argv curl received. The line must pass `sh -n` first."""
    stub = workdir / "stub-bin"
    stub.mkdir(exist_ok=True)
    (stub / "curl").write_text(STUB_CURL)
    (stub / "curl").chmod(0o755)
    record = workdir / "curl-args"
    record.unlink(missing_ok=True)
    syntax = run([*shell, "-n", "-c", line], cwd=workdir)
    assert syntax.returncode == 0, syntax.stderr
    full_env = {"PATH": f"{stub}:{os.environ.get('PATH', '')}", "CURL_ARGS": str(record),
                **(env or {})}
    pasted = run([*shell, "-c", line], cwd=workdir, env=full_env)
    assert pasted.returncode == 0, pasted.stderr
    return record.read_bytes().decode().split("\0")[:-1]
