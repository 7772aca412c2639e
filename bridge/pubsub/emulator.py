"""Google's Pub/Sub emulator as a child process: found in the Cloud SDK, started on loopback
in its own process group, ready once it answers HTTP, stopped with its whole group.

Its state lives as long as the process (docs/pubsub.md): nothing is kept between two starts.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

INSTALL_HINT = ("Debian package google-cloud-cli-pubsub-emulator, or "
                "`gcloud components install pubsub-emulator`; it needs Java")
# The JIT's first tier alone starts the JVM in about half the time; enough for a test server.
_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


class EmulatorError(Exception):
    """The emulator is not installed, or did not start."""


def find() -> list[str] | None:
    """The command that runs the emulator (its launcher script in the Cloud SDK), or None."""
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        return None
    sdk_root = Path(os.path.realpath(gcloud)).parent.parent
    script = sdk_root / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
    return [str(script)] if script.is_file() else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Emulator:
    """One emulator process; `Emulator.start(log=path)` returns it once it accepts requests."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int, log: Path
                 ) -> None:
        self.process, self.host, self.port, self.log = process, host, port, log
        self._stopped = False
        atexit.register(self.stop)

    @property
    def host_port(self) -> str:
        """What PUBSUB_EMULATOR_HOST is set to for this emulator."""
        return f"{self.host}:{self.port}"

    @classmethod
    def launch(cls, log: Path, *, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        """Start the process without waiting for it (see `wait_ready`)."""
        command = find()
        if command is None:
            raise EmulatorError(f"the Pub/Sub emulator is not installed ({INSTALL_HINT})")
        port = port or free_port(host)
        env = dict(os.environ)
        env.setdefault("JAVA_OPTS", _JAVA_OPTS)
        # If this process dies without cleaning up (SIGKILL), the kernel stops the emulator:
        # setpriv execs the launcher script, which execs java, so the setting stays in force.
        # It fires when the starting *thread* ends, hence the main thread only.
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():
            command = [setpriv, "--pdeathsig", "KILL", "--", *command]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, f"--host={host}", f"--port={port}"], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return cls(process, host, port, log)

    @classmethod
    def start(cls, log: Path, *, host: str = "127.0.0.1", port: int = 0,
              timeout: float = 60.0) -> Emulator:
        emulator = cls.launch(log, host=host, port=port)
        try:
            emulator.wait_ready(timeout)
        except BaseException:
            emulator.stop()
            raise
        return emulator

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once the emulator answers; EmulatorError if it exits or takes too long."""
        deadline = time.monotonic() + timeout
        url = f"http://{self.host_port}/"
        while True:
            if self.process.poll() is not None:
                raise EmulatorError(f"the Pub/Sub emulator exited: {self._last_line()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise EmulatorError(f"the Pub/Sub emulator did not answer on {self.host_port} "
                                    f"within {timeout:.0f} s")
            time.sleep(0.05)

    def _last_line(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no output"
        return lines[-1][:300] if lines else "no output"

    def stop(self) -> None:
        """Stop the whole process group (the launcher and the JVM); safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
