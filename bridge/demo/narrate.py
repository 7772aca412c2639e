"""How the demo talks: a numbered story on stdout, progress on stderr (only on a terminal),
and the final table of every device as both clouds see it."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import click

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    device: str
    role: str
    registry: str
    mender: str
    key: str
    telemetry: str
    ota_auth: str
    ok: bool


class Narrator:
    """Prints the story and remembers every check that failed."""

    def __init__(self, *, color: bool | None = None) -> None:
        self.failures: list[str] = []
        self.checks = 0
        self.color = color

    def chapter(self, title: str) -> None:
        click.echo(f"\n{title}", color=self.color)

    def say(self, text: str) -> None:
        click.echo(f"   {text}", color=self.color)

    def check(self, ok: bool, text: str) -> bool:
        self.checks += 1
        mark = click.style("✓", fg="green") if ok else click.style("✗", fg="red")
        click.echo(f"   {mark} {text}", color=self.color)
        if not ok:
            self.failures.append(text)
        return ok

    def progress(self, items: Iterable[T], label: str, length: int) -> Iterator[T]:
        """A progress bar on stderr when it is a terminal; silent otherwise."""
        if not sys.stderr.isatty():
            yield from items
            return
        with click.progressbar(items, length=length, label=f"   {label}",
                               file=sys.stderr) as bar:
            yield from bar


HEADERS = ("DEVICE", "ROLE", "REGISTRY", "MENDER", "KEY (sha256)", "TELEMETRY", "OTA AUTH",
           "CHECK")


def table(rows: list[Row]) -> str:
    cells = [HEADERS] + [(r.device, r.role, r.registry, r.mender, r.key, r.telemetry,
                          r.ota_auth, "ok" if r.ok else "FAIL") for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
             .rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
