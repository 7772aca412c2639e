"""How the demo talks: a numbered story (on stdout, or on stderr under --json), progress on
stderr (only on a terminal), and the final table of every device as both clouds see it, as
text or as one JSON object (SCHEMA_VERSION; its shape in `result`)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import click

T = TypeVar("T")
SCHEMA_VERSION = 1


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


@dataclass(frozen=True)
class Check:
    text: str
    ok: bool


class Narrator:
    """Prints the story and remembers every check that failed."""

    def __init__(self, *, color: bool | None = None, err: bool = False) -> None:
        self.results: list[Check] = []
        self.color, self.err = color, err

    @property
    def failures(self) -> list[str]:
        return [c.text for c in self.results if not c.ok]

    @property
    def checks(self) -> int:
        return len(self.results)

    def line(self, text: str) -> None:
        click.echo(text, color=self.color, err=self.err)

    def chapter(self, title: str) -> None:
        self.line(f"\n{title}")

    def say(self, text: str) -> None:
        self.line(f"   {text}")

    def check(self, ok: bool, text: str) -> bool:
        self.results.append(Check(text, ok))
        mark = click.style("✓", fg="green") if ok else click.style("✗", fg="red")
        self.line(f"   {mark} {text}")
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


def result(rows: list[Row], narrator: Narrator, **about: Any) -> dict[str, Any]:
    """The demo's outcome as one JSON-ready object: `ok`, every device as both clouds see it
    (`devices`: device, role, registry, mender, key, telemetry, ota_auth, ok), every check
    (`checks`: text, ok), and what `about` adds (the folder, the event path...)."""
    ok = bool(rows) and not narrator.failures and all(r.ok for r in rows)
    return {"schema_version": SCHEMA_VERSION, "ok": ok, **about,
            "devices": [asdict(r) for r in rows],
            "checks": [asdict(c) for c in narrator.results]}
