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
