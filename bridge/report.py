"""What a sync did: one outcome per action, counts per status, and what a person should look at.

Thread-safe to fill (the backfill's workers add to one report); JSON-ready via `to_dict`.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import asdict, dataclass, field

from bridge.reconcile import Action, Kind, Reason


class Status(enum.StrEnum):
    DONE = "done"
    PLANNED = "planned"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    device: str
    action: str
    status: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def nothing_status(action: Action) -> Status:
    if action.reason in (Reason.IN_SYNC, Reason.DECOMMISSIONING):
        return Status.UNCHANGED
    if action.reason is Reason.CONFLICT:
        return Status.CONFLICT
    return Status.SKIPPED


def outcome(action: Action, status: Status | None = None, detail: str | None = None) -> Outcome:
    if status is None:
        status = nothing_status(action) if action.kind is Kind.NOTHING else Status.PLANNED
    return Outcome(action.device, action.kind.value, status.value,
                   action.detail if detail is None else detail)


@dataclass
class Report:
    """`outcomes`: every action's result; `attention`: pending auth sets whose key matches no
    registry credential (a re-imaged device or an impostor)."""

    outcomes: list[Outcome] = field(default_factory=list)
    attention: list[Outcome] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, item: Outcome) -> None:
        with self._lock:
            self.outcomes.append(item)

    def record(self, action: Action, status: Status | None = None,
               detail: str | None = None) -> Outcome:
        """Add the outcome of one action; REVIEW actions go to `attention`."""
        item = outcome(action, status, detail)
        with self._lock:
            if action.reason is Reason.REVIEW:
                self.attention.append(item)
            else:
                self.outcomes.append(item)
        return item

    def merge(self, other: Report) -> None:
        with self._lock:
            self.outcomes.extend(other.outcomes)
            self.attention.extend(other.attention)

    @property
    def failed(self) -> bool:
        return any(o.status == Status.FAILED for o in self.outcomes)

    @property
    def changed(self) -> bool:
        return any(o.status in (Status.DONE, Status.PLANNED) for o in self.outcomes)

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys((s.value for s in Status), 0)
        for item in self.outcomes:
            counts[item.status] = counts.get(item.status, 0) + 1
        counts["attention"] = len(self.attention)
        return counts

    def to_dict(self) -> dict[str, object]:
        return {"summary": self.summary(),
                "actions": [o.to_dict() for o in self.outcomes],
                "attention": [o.to_dict() for o in self.attention],
                "stats": dict(self.stats)}
