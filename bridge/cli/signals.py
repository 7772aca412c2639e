"""Stop signals of the long-running commands (`serve`, `listen`): the first SIGTERM or SIGINT
starts a graceful stop, a second one stops at once (exit 128 + the signal number)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType

from bridge import logs

# A closed terminal (SIGHUP) stops a worker as cleanly as Ctrl-C or its supervisor's SIGTERM.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def on_stop_signals(stop: Callable[[], None], logger: str, doing: str) -> None:
    """Call `stop` (it must be safe in a signal handler) at the first stop signal, after
    logging `<SIGNAL>: <doing>` on the bridge logger `logger`."""

    def _graceful(signum: int, frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, _now)
        logs.emit(logs.get_logger(logger), logging.INFO,
                  f"{signal.Signals(signum).name}: {doing}")
        stop()

    def _now(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, _graceful)
