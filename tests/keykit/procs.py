"""Subprocesses for the key tests: each in its own process group, killed with its children
on the way out whatever happens (a hung shell, an openssl waiting on input, a timeout)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support import procs


def run(args: Sequence[str | Path], *, timeout: float = 120, env: dict[str, str] | None = None,
        **options: Any) -> subprocess.CompletedProcess[str]:
    """`tests.support.procs.run`, in this process's environment unless `env` is given."""
    return procs.run(args, env=dict(os.environ) if env is None else env, timeout=timeout,
                     **options)


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
