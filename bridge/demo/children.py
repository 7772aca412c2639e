"""The demo's child processes: each in its own session, so a terminal's Ctrl-C reaches the demo
alone and the demo stops them in order; stopped with their whole process group (SIGTERM, then
SIGKILL for a group that ignores it), and told to stop by the kernel if the demo dies first.
Also the demo's one way to wait for something to come true."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# A polite stop that takes longer than this is not coming (gunicorn's graceful stop waits up
# to 30 s for busy workers; the demo's are idle or can be retried by Pub/Sub).
GRACE_S = 5.0


class Child:
    """One child process and the process group it leads; `stop()` is safe to call twice."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], log: Path) -> None:
        command = list(argv)
        # setpriv execs the command, which keeps the setting: if the demo is killed outright
        # (SIGKILL), the kernel sends SIGTERM to this child. It fires when the starting
        # *thread* ends, so only from the main thread.
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = GRACE_S) -> None:
        """SIGTERM to the group; SIGKILL to what is left of it after `grace` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
            if not _signal_group(self.pid, sig):
                break
            if self._wait_group(wait):
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)

    def _wait_group(self, timeout: float) -> bool:
        """True once the leader exited and no process of its group is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.process.poll()  # reaps the leader, which otherwise stays as a zombie
            if self.process.returncode is not None and not _signal_group(self.pid, 0):
                return True
            time.sleep(0.05)
        return False


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False if it has no process left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a pid reused by someone else's process: not ours to signal
        return False
    return True


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it is true; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
