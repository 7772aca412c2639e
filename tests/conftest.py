"""Suite-wide hooks: one line in the terminal summary saying which tests did not run (or ran
unchecked) because a file beside the repository (../shared) was absent, and why."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures import HOWTO, MISSING, SKIP_MARK


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
