"""The helper every demo test runs the demo with: a process tree that ignores SIGINT and
SIGTERM, with a child in a session of its own listening on a port, is still killed whole when
the test leaves the helper (a demo test once leaked six such trees)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from tests.support.procs import Spawned

STUBBORN = """
import signal, subprocess, sys, time
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", '''
import signal, socket, time
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
print("listening on", server.getsockname()[1], flush=True)
time.sleep(600)
'''], start_new_session=True)
time.sleep(600)
"""


def test_a_tree_that_ignores_stop_signals_is_killed_whole(tmp_path: Path) -> None:
    with Spawned([sys.executable, "-c", STUBBORN], env=dict(os.environ),
                 log=tmp_path / "out") as stubborn:
        port = int(stubborn.wait_for(r"listening on (\d+)", timeout=60).group(1))
        stubborn.sample()
        stubborn.proc.send_signal(signal.SIGINT)
        stubborn.proc.send_signal(signal.SIGTERM)
        assert len(stubborn.groups) == 2 and stubborn.ports == {port}
        assert stubborn.still_listening() == {port}
    assert stubborn.leftovers() == []
    assert stubborn.still_listening() == set()
