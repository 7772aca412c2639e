"""The demo's data folder: a temporary one, a new or empty one, or one an earlier demo left
(reset: the stand-ins' databases are removed, so the story starts from nothing). Any other
folder is refused: the demo never deletes what it did not make."""

from __future__ import annotations

import enum
import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bridge.sandbox.launcher import LOCK_NAME

MARKER = "mender-bridge-demo.txt"
# Only the demo writes its function's log: a folder an earlier version of the demo left.
OLD_MARKER = "function.log"
# What holds an earlier story's state: the stand-ins' databases (with SQLite's -wal, -shm and
# -journal files), the token and config naming them, the logs. TLS and signing keys stay.
STATE = ("mender.sqlite", "registry.sqlite", "sandbox-token", "bridge.toml", "function.log",
         "pubsub-emulator.log")


class Prepared(enum.StrEnum):
    TEMPORARY = "temporary"  # made for this run, removed at the end unless --keep
    NEW = "new"
    RESET = "reset"


@dataclass(frozen=True)
class Folder:
    path: Path
    prepared: Prepared

    def describe(self) -> str:
        """One line saying what was done to the folder."""
        if self.prepared is Prepared.RESET:
            return (f"Data folder {self.path}: reset (an earlier demo's devices and Mender "
                    "state were removed).")
        return f"Data folder {self.path}: {self.prepared}."


class FolderError(Exception):
    """The folder cannot be used; the message says why and what to do."""


def prepare(path: Path | None) -> Folder:
    if path is None:
        made = Path(tempfile.mkdtemp(prefix="mender-bridge-demo-"))
        return _mark(Folder(made, Prepared.TEMPORARY))
    path = path.resolve()
    if path.exists() and not path.is_dir():
        raise FolderError(f"{path} is not a folder")
    entries = {p.name for p in path.iterdir()} if path.exists() else set()
    if not entries - {LOCK_NAME}:
        path.mkdir(parents=True, exist_ok=True)
        return _mark(Folder(path, Prepared.NEW))
    if not entries & {MARKER, OLD_MARKER}:
        raise FolderError(f"{path} is not empty and no earlier demo left it (the demo would "
                          "reset it): give a new or empty folder")
    _unlocked(path)
    for name in entries:
        if name.startswith(STATE):
            (path / name).unlink(missing_ok=True)
    return _mark(Folder(path, Prepared.RESET))


def _unlocked(path: Path) -> None:
    """FolderError if a running sandbox (a `demo --keep`, or `sandbox`) holds the folder."""
    lock = path / LOCK_NAME
    if not lock.exists():
        return
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        raise FolderError(f"{path} is in use by a running sandbox or demo (pid {holder}): "
                          "stop it first, or give another folder") from None
    finally:
        os.close(fd)  # releases the lock; the sandbox takes its own


def _mark(folder: Folder) -> Folder:
    (folder.path / MARKER).write_text(
        "This folder holds the sandbox of `mender-bridge demo`. Running the demo on it again "
        "resets it.\n", encoding="utf-8")
    return folder
