"""What several commands share: loading settings, logging to stderr with their secrets
redacted, the `--config` and `--json` options, and a progress line for a terminal."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

import click

from bridge import logs
from bridge.config import Settings

CONFIG = click.option("--config", type=click.Path(dir_okay=False),
                      help="TOML settings file (environment variables override it); "
                           "without it, settings come from the environment.")
JSON = click.option("--json", "as_json", is_flag=True,
                    help="Print one JSON object (its shape: docs/report.md).")


def load_settings(config: str | None) -> Settings:
    """From the TOML file (environment variables override it), else from the environment."""
    env = dict(os.environ)
    return Settings.from_toml(config, env) if config else Settings.from_env(env)


def setup(config: str | None, *, quiet: bool = False) -> Settings:
    """Settings, and the bridge's logs on stderr with the settings' secrets redacted."""
    settings = load_settings(config)
    logs.configure("ERROR" if quiet else settings.log_level, stream=sys.stderr,
                   redactor=logs.Redactor(*settings.secret_values()))
    return settings


class ProgressLine:
    """`synced 1200 of ~5000 devices, 230/s, ETA 0:17` on stderr, redrawn at most 5 times a
    second; only on a terminal. Call it with each device done and the best total known."""

    def __init__(self, stream: TextIO = sys.stderr, label: str = "synced") -> None:
        self.stream, self.label = stream, label
        self.enabled = stream.isatty()
        self.done = 0
        self.total: int | None = None
        self._start = time.monotonic()
        self._drawn = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.done += done
        self.total = total if total is not None else self.total
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.2:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-6)
        rate = self.done / elapsed
        text = f"{self.label} {self.done}"
        if self.total:
            total = max(self.total, self.done)
            text += f" of ~{total} devices"
            if rate > 0 and total > self.done:
                eta = int((total - self.done) / rate)
                text += f", ETA {eta // 60}:{eta % 60:02d}"
        else:
            text += " devices"
        text += f", {rate:.0f}/s"
        self.stream.write("\r" + text.ljust(60))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
