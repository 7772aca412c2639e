"""`serve` that cannot listen says why in one line naming the flag to change, and exits 2."""

from __future__ import annotations

import socket

import pytest

from tests.serve.support import offline_env, run_serve

pytestmark = [pytest.mark.e2e]


def plain_lines(text: str) -> list[str]:
    """The lines meant for a person (JSON log lines aside)."""
    return [line for line in text.splitlines() if line and not line.startswith("{")]


def test_a_port_in_use_is_one_line_naming_port_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(["--port", str(port)], offline_env())
    assert done.returncode == 2
    assert plain_lines(done.stderr) == [
        f"mender-bridge: error: port {port} is in use; choose another with --port (or $PORT)"]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("host", ["192.0.2.1", "203.0.113.9"])
def test_a_host_that_is_not_this_machine_is_one_line_naming_host_and_exit_2(host: str) -> None:
    done = run_serve(["--host", host, "--port", "0"], offline_env())
    assert done.returncode == 2
    [line] = plain_lines(done.stderr)
    assert line.startswith("mender-bridge: error: --host ") and host in line
    assert "Traceback" not in done.stderr


def test_a_host_name_that_does_not_resolve_names_host() -> None:
    done = run_serve(["--host", "no-such-host.invalid", "--port", "0"], offline_env())
    assert done.returncode == 2
    [line] = plain_lines(done.stderr)
    assert line.startswith("mender-bridge: error: --host no-such-host.invalid")
