"""Suite-wide hooks: one line in the terminal summary saying which tests did not run (or ran
unchecked) because a file beside the repository (../shared) was absent, and why; Ctrl-C
reaching the processes the tests start, however the suite itself was started."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.fixtures import HOWTO, MISSING, SKIP_MARK


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background of a non-interactive shell inherits SIGINT ignored, and
    # an ignored signal stays ignored across exec: the CLI under test would never see the
    # Ctrl-C the interrupt tests send it. A handler of our own is reset to the default on exec.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _shared_skips(reporter: Any) -> int:
    reports = reporter.stats.get("skipped", [])
    return sum(1 for report in reports if SKIP_MARK in str(report.longrepr))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    skipped = _shared_skips(terminalreporter)
    if not skipped and not MISSING:
        return
    names = ", ".join(f"../shared/{name}" for name in sorted(MISSING))
    unchecked = "; ".join(sorted(set().union(*MISSING.values())))
    terminalreporter.write_line(
        f"NOT BESIDE THE REPOSITORY: {names or '../shared'}: {skipped} skipped"
        + (f", {unchecked}" if unchecked else "") + f" ({HOWTO})", yellow=True, bold=True)
