"""Processes a test starts, and what they leave behind.

`Spawned` runs a command in its own session and process group, its stdout in a file and its
stderr either in that file or on a pseudo-terminal that is its controlling terminal (so writing
Ctrl-C to the terminal is a real terminal's SIGINT, and closing it a real hang-up). While it
runs, a sampler remembers the process group of every descendant (a child that starts its own
session included) and every port they listen on; `leftovers()` and `still_listening()` say
what of those is left, and leaving the `with` block kills every remembered group, whatever
happened. Linux only (/proc).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import subprocess
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of `pid`, or None if it is gone or a zombie (dead, only
    waiting to be reaped: it holds no port and runs nothing)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[2]))


def processes() -> dict[int, tuple[int, int]]:
    """Every live process: pid → (parent pid, process group)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            found[int(entry)] = stat
    return found


def descendants(root: int, table: dict[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def listening_ports() -> dict[int, int]:
    """Socket inode → port of every listening TCP socket (IPv4 and IPv6)."""
    found = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(name) as table:
            for line in list(table)[1:]:
                cols = line.split()
                if cols[3] == _LISTEN:
                    found[int(cols[9])] = int(cols[1].rsplit(":", 1)[1], 16)
    return found


def ports_of(pids: set[int]) -> set[int]:
    """The TCP ports `pids` listen on."""
    listening, found = listening_ports(), set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    match = re.fullmatch(r"socket:\[(\d+)\]", target)
                    if match and int(match.group(1)) in listening:
                        found.add(listening[int(match.group(1))])
    return found


def run(argv: Sequence[str | Path], *, env: dict[str, str], cwd: Path | None = None,
        timeout: float = 300.0, input: str | None = None,
        **options: Any) -> subprocess.CompletedProcess[str]:
    """Like subprocess.run(capture_output=True, text=True), in a session of its own whose
    process group is killed on the way out, whatever happened. `options` go to Popen (umask,
    user...); output that is not UTF-8 is decoded with replacement characters."""
    proc = subprocess.Popen([str(a) for a in argv], env=env, cwd=cwd, encoding="utf-8",
                            errors="replace", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                            start_new_session=True, **options)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _controlling_terminal() -> None:  # pragma: no cover - runs in the child
    # After setsid (start_new_session), stdin is the pty: make it the controlling terminal.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Spawned:
    """A command in its own session; see the module docstring. Use it as a context manager."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], log: Path,
                 cwd: Path | None = None, terminal: bool = False,
                 stderr_log: Path | None = None) -> None:
        """stdout goes to `log`; stderr to the terminal, else to `stderr_log`, else `log`."""
        self.log, self.groups, self.ports = log, set[int](), set[int]()
        self.stderr_log = stderr_log
        self._terminal = bytearray()
        self._master: int | None = None
        self._lock, self._done, self._closing = threading.Lock(), threading.Event(), \
            threading.Event()
        slave = None
        if terminal:
            self._master, slave = os.openpty()
        with contextlib.ExitStack() as files:
            out = files.enter_context(log.open("wb"))
            err: int | IO[bytes] = subprocess.STDOUT if slave is None else slave
            if stderr_log is not None and slave is None:
                err = files.enter_context(stderr_log.open("wb"))
            self.proc = subprocess.Popen(
                list(argv), env=env, cwd=cwd, stdout=out, stderr=err,
                stdin=slave if slave is not None else subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_controlling_terminal if terminal else None)
        self.groups.add(self.proc.pid)
        self._reader: threading.Thread | None = None
        if slave is not None:
            os.close(slave)
            self._reader = threading.Thread(target=self._read_terminal, daemon=True)
            self._reader.start()
        threading.Thread(target=self._sample, daemon=True).start()

    # -- what it printed ------------------------------------------------------------------
    def stdout(self) -> str:
        return self.log.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_log.read_text(errors="replace") if self.stderr_log else ""

    def terminal(self) -> str:
        with self._lock:
            return self._terminal.decode(errors="replace")

    def wait_for(self, pattern: str, *, on_terminal: bool = False, timeout: float = 180.0
                 ) -> re.Match[str]:
        """The first match of `pattern` in stdout (or on the terminal); AssertionError if the
        process exits or `timeout` passes first (a deadline, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.terminal() if on_terminal else self.stdout())
            if match:
                return match
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not seen (exit {self.proc.returncode}):\n"
                                     f"{self.stdout()[-3000:]}\n{self.terminal()[-3000:]}")
            time.sleep(0.1)

    # -- stopping it ----------------------------------------------------------------------
    def press_ctrl_c(self) -> None:
        """What a person's Ctrl-C does: the terminal sends SIGINT to its foreground group."""
        assert self._master is not None, "not started on a terminal"
        os.write(self._master, b"\x03")

    def hang_up(self) -> None:
        """Close the terminal, as closing its window does: SIGHUP to the session."""
        assert self._master is not None, "not started on a terminal"
        self._close_terminal()

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def leftovers(self) -> list[str]:
        """Processes still alive in any group this command or its descendants ever led."""
        table = processes()
        return [f"pid {pid} (group {group}): {_cmdline(pid)}"
                for pid, (_, group) in sorted(table.items()) if group in self.groups]

    def still_listening(self) -> set[int]:
        """The ports this command's processes listened on that something still listens on."""
        return self.ports & set(listening_ports().values())

    def kill_all(self) -> None:
        self._done.set()
        for group in sorted(self.groups):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        deadline = time.monotonic() + 10  # SIGKILL is not instant for another's children
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._close_terminal()

    def _close_terminal(self) -> None:
        # The reader stops first: a read in progress would keep the terminal open.
        self._closing.set()
        if self._reader is not None:
            self._reader.join(5)
        if self._master is not None:
            os.close(self._master)
            self._master = None

    def __enter__(self) -> Spawned:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill_all()

    # -- threads --------------------------------------------------------------------------
    def _read_terminal(self) -> None:
        master = self._master
        assert master is not None
        while not self._closing.is_set():
            if not select.select([master], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: no process has the terminal open any more
                return
            if not chunk:
                return
            with self._lock:
                self._terminal += chunk

    def _sample(self) -> None:
        while not self._done.is_set() and self.proc.poll() is None:
            self.sample()
            self._done.wait(0.2)

    def sample(self) -> None:
        """Remember the groups and listening ports of the command's processes now."""
        table = processes()
        tree = descendants(self.proc.pid, table) | {self.proc.pid}
        self.groups.update(table[p][1] for p in tree if p in table)
        self.ports.update(ports_of(tree))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"
