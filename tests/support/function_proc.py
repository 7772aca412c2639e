"""A target of functions/main.py served by functions-framework in a session of its own (see
`tests/support/procs.py`), for end-to-end tests: its URL, and its JSON log lines read back.

    with FunctionProcess("on_push", env, tmp_path / "on_push.log") as function:
        ...  # point an event source at function.url
        function.records()  # every JSON line the bridge logged so far

Leaving the `with` block kills every process group of the server's tree, whatever happened.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from tests.function.e2e_support import ROOT, free_port, wait_for
from tests.support.procs import Spawned


class FunctionProcess:
    def __init__(self, target: str, env: dict[str, str], log: Path, *extra: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        binary = Path(sys.executable).parent / "functions-framework"
        self.process = Spawned(
            [str(binary), "--target", target, "--source", str(ROOT / "functions/main.py"),
             "--host", "127.0.0.1", "--port", str(port), *extra],
            env=env, log=log, cwd=ROOT)
        try:
            wait_for(self._accepts, 60, f"{target} to accept connections")
        except BaseException:
            self.process.kill_all()
            raise

    def _accepts(self) -> bool:
        if self.process.proc.poll() is not None:
            raise AssertionError(f"functions-framework exited:\n{self.output()[-3000:]}")
        try:
            requests.get(self.url + "/healthz", timeout=2)
        except requests.ConnectionError:
            return False
        return True

    def output(self) -> str:
        return self.process.stdout()

    def records(self) -> list[dict[str, Any]]:
        """The JSON objects the server logged, one a line, in order."""
        found = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict):
                    found.append(item)
        return found

    def stop(self) -> None:
        self.process.kill_all()

    def __enter__(self) -> FunctionProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
