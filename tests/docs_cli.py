"""What tests/test_docs.py reads out of the README (command lines, quoted error messages) and
the runs of the real CLI that print each quoted message, from the input that causes it.

The README is the expectation: nothing here holds a message's text, only the inputs."""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.config import Settings
from tests.support import procs

CLI = (sys.executable, "-m", "bridge")
# Settings and the commands' own variables: a run sees only what its scenario gives it.
_SETTINGS = frozenset(f.name.upper() for f in fields(Settings))
_OWN = ("MENDER_TOKEN_", "SERVE_", "PORT", "RECONCILE_EVERY", "SANDBOX_PUBSUB", "CLEARBLADE_")


def env(**settings: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in _SETTINGS and not k.startswith(_OWN)}
    return {**clean, **settings}


def cli(*args: str, cwd: Path | None = None, **settings: str) -> subprocess.CompletedProcess[str]:
    return procs.run([*CLI, *args], env=env(**settings), cwd=cwd, timeout=60)


# --- README: command lines ----------------------------------------------------------------

_FENCE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.M | re.S)
_SPAN = re.compile(r"`([^`]+)`")
_SUBSHELL = re.compile(r"\$\([^)]*\)")
_FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")


def fenced(text: str) -> list[tuple[str, str]]:
    """(language, text) of each code block, indented ones (in a list item) included."""
    return [(lang, block) for lang, block in _FENCE.findall(text)]


def command_lines(text: str) -> list[str]:
    """Every `mender-bridge …` line of `text` (code blocks and code spans, the command
    table's first cells), as the words after `mender-bridge`."""
    found: list[str] = []
    for lang, block in _FENCE.findall(text):
        if lang in ("sh", ""):
            for line in block.replace("\\\n", " ").splitlines():
                found += _after_prog(re.split(r" #|\||&&|;", line)[0])
    prose = _FENCE.sub("", text)
    for span in _SPAN.findall(prose):
        found += _after_prog(span.replace("\n", " ").replace("\\|", "|"))
    for row in re.findall(r"^\| `([a-z][\w-]*(?: [^`]*)?)` \|", prose, re.M):
        if row.split()[0] in commands_of(()):
            found.append(row.replace("\\|", "|"))
    return found


def _after_prog(text: str) -> list[str]:
    return [m.group(1).strip()
            for m in re.finditer(r"(?<![\w/.-])mender-bridge ([a-z][\w-]*(?: .*)?)", text)]


@cache
def _help(path: tuple[str, ...]) -> str:
    result = procs.run([*CLI, *path, "--help"], env=env(), timeout=60)
    assert result.returncode == 0, f"mender-bridge {' '.join(path)} --help: {result.stderr}"
    return result.stdout


def options_of(path: tuple[str, ...]) -> frozenset[str]:
    """The options `mender-bridge <path> --help` lists."""
    text = _help(path).split("\nOptions:\n", 1)[1].split("\nCommands:\n", 1)[0]
    return frozenset(re.findall(r"(?m)^  (?:-\w, )?(--[\w-]+)", text))


def commands_of(path: tuple[str, ...]) -> frozenset[str]:
    """The subcommands `mender-bridge <path> --help` lists."""
    parts = _help(path).split("\nCommands:\n", 1)
    return frozenset(re.findall(r"(?m)^  ([a-z][\w-]*)", parts[1])) if len(parts) > 1 else (
        frozenset())


def problems_of(line: str) -> tuple[tuple[str, ...], list[str]]:
    """(the command's path, what in `line` the CLI does not have)."""
    words = line.split()
    path = (words[0],)
    if path[0] not in commands_of(()):
        return path, [f"no command {path[0]!r}"]
    subcommands = commands_of(path)
    if subcommands and len(words) > 1 and words[1] in subcommands:
        path += (words[1],)
    elif subcommands and len(words) > 1 and " COMMAND [ARGS]" in _help(path).splitlines()[0]:
        return path, [f"{path[0]} needs one of {sorted(subcommands)}"]
    flags = set(_FLAG.findall(_SUBSHELL.sub("", line)))
    return path, [f"no option {flag}" for flag in sorted(flags - options_of(path))]


# --- README: quoted error messages --------------------------------------------------------

def quoted_errors(text: str) -> list[tuple[str, int]]:
    """Each quoted message: a code span followed by `(exit N)` (line breaks read as spaces)."""
    flat = re.sub(r"\n\s*", " ", _FENCE.sub("", text))
    found = []
    for span in _SPAN.finditer(flat):
        code = re.match(r"\s*\(exit (\d+)\)", flat[span.end():])
        if code:
            found.append((span.group(1), int(code.group(1))))
    return found


# --- runs that print them -----------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    what: str
    result: subprocess.CompletedProcess[str]

    @property
    def lines(self) -> list[str]:
        return (self.result.stdout + self.result.stderr).splitlines()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _holding(port: int) -> socket.socket | None:
    """A socket listening on `port`, or None when another process already does."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            raise
        return None
    return sock


def _weak_rsa_public(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused on purpose
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def offline_runs(tmp: Path) -> Iterator[Run]:
    """Runs that need no server: settings, names, scope, keys, `serve` and `listen` set-up."""
    valid = {"MENDER_TOKEN": "t", "IOT_PROJECT": "my-project", "IOT_CREDENTIALS": "anonymous",
             "IOT_ENDPOINT": f"http://127.0.0.1:{_free_port()}"}
    yield Run("no settings", cli("sync"))
    yield Run("unreadable value", cli("sync", CONCURRENCY="lots", MENDER_TOKEN="t",
                                      IOT_PROJECT="my-project"))
    yield Run("injected device id", cli("device", "dev-2?fieldMask=name"))
    yield Run("registry out of scope", cli("sync", "--registry", "other", **valid,
                                           IOT_REGISTRIES="fleet"))
    yield Run("partial prune", cli("sync", "--prune", "--registry", "fleet-a", **valid,
                                   IOT_REGISTRIES="fleet-a,fleet-b"))
    yield Run("serve without secret", cli("serve", **valid))
    held = _holding(8080)
    try:
        yield Run("port in use", cli("serve", **valid, WEBHOOK_SECRET="s"))
    finally:
        if held is not None:
            held.close()
    yield Run("listen without subscription", cli("listen", **valid))
    for _ in range(2):
        made = cli("keys", "generate", "--out", "device-key", "--device-id", "my-device",
                   cwd=tmp)
    yield Run("key exists", made)
    yield Run("weak key", cli("keys", "inspect", str(_weak_rsa_public(tmp / "weak.pem"))))
    refused = f"http://127.0.0.1:{_free_port()}"
    yield Run("nothing listening", cli("sync", MENDER_URL=refused, MENDER_TOKEN="t",
                                       IOT_PROJECT="my-project", IOT_REGISTRIES="fleet",
                                       IOT_ENDPOINT=refused, IOT_CREDENTIALS="anonymous"))


def sandbox_runs(mender_url: str, registry_url: str, ca_cert: Path, token: str,
                 project: str) -> Iterator[Run]:
    """Runs against a running sandbox (TLS): refused token, untrusted certificate, a registry
    the registry service does not have."""
    def sandbox(**more: str) -> dict[str, str]:
        return {"MENDER_URL": mender_url, "IOT_PROJECT": project, "IOT_ENDPOINT": registry_url,
                "IOT_CREDENTIALS": "anonymous", **more}

    yield Run("token refused", cli("sync", **sandbox(MENDER_TOKEN="wrong",
                                                     MENDER_CA_BUNDLE=str(ca_cert))))
    yield Run("certificate not trusted", cli("sync", **sandbox(MENDER_TOKEN=token)))
    yield Run("unknown registry", cli("device", "dev-1", "--registry", "nope-reg",
                                      **sandbox(MENDER_TOKEN=token,
                                                MENDER_CA_BUNDLE=str(ca_cert))))
