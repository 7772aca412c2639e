"""What a sync did: one outcome per action, counts per status and per device, and what a person
should look at.

Thread-safe to fill (the backfill's workers add to one report); JSON-ready via `to_dict`, whose
shape is versioned by SCHEMA_VERSION and documented in docs/report.md.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field

from bridge.actions import Action, Kind, Reason

SCHEMA_VERSION = 1


class Status(enum.StrEnum):
    DONE = "done"
    PLANNED = "planned"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    SKIPPED = "skipped"
    FAILED = "failed"


class Step(enum.StrEnum):
    """Outcomes that are not a planned Mender action."""

    NOTHING = "nothing"
    READ = "read"
    LIST = "list"
    PRUNE = "prune"
    NOTIFY = "notify"
    SYNC = "sync"
    TAG = "tag"  # Mender inventory tags from registry metadata (TAGS)


# A device's status in the per-device counts: the most serious of its outcomes.
_SEVERITY = (Status.FAILED, Status.CONFLICT, Status.DONE, Status.PLANNED, Status.SKIPPED,
             Status.UNCHANGED)


@dataclass(frozen=True, slots=True)
class Outcome:
    device: str
    action: str  # a reconcile.Kind or a Step
    status: Status
    detail: str = ""
    target: str = ""  # the Mender target, when there are several

    def to_dict(self) -> dict[str, str]:
        out = {"device": self.device, "action": str(self.action),
               "status": str(self.status), "detail": self.detail}
        if self.target:
            out["target"] = self.target
        return out


def nothing_status(action: Action) -> Status:
    if action.reason in (Reason.IN_SYNC, Reason.DECOMMISSIONING):
        return Status.UNCHANGED
    if action.reason is Reason.CONFLICT:
        return Status.CONFLICT
    return Status.SKIPPED


def outcome(action: Action, status: Status | None = None, detail: str | None = None) -> Outcome:
    if status is None:
        status = nothing_status(action) if action.kind is Kind.NOTHING else Status.PLANNED
    return Outcome(action.device, action.kind, status,
                   action.detail if detail is None else detail)


@dataclass
class Report:
    """`outcomes`: every action's result; `attention`: pending auth sets whose key matches no
    registry credential (a re-imaged device or an impostor); `interrupted`: why the run stopped
    before the end (Ctrl-C, --fail-fast), empty if it did not."""

    outcomes: list[Outcome] = field(default_factory=list)
    attention: list[Outcome] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    interrupted: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, item: Outcome) -> Outcome:
        with self._lock:
            self.outcomes.append(item)
        return item

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

    def merge(self, other: Report, target: str = "") -> None:
        """Add `other`'s outcomes (tagged with `target`), attention items and stats."""
        def tag(items: list[Outcome]) -> list[Outcome]:
            if not target:
                return items
            return [Outcome(o.device, o.action, o.status, o.detail, target) for o in items]

        with self._lock:
            self.outcomes.extend(tag(other.outcomes))
            self.attention.extend(tag(other.attention))
            for key, value in other.stats.items():
                self.stats[f"{target}.{key}" if target else key] = value
            self.interrupted = self.interrupted or other.interrupted

    @property
    def failed(self) -> bool:
        return any(o.status is Status.FAILED for o in self.outcomes)

    @property
    def changed(self) -> bool:
        return any(o.status in (Status.DONE, Status.PLANNED) for o in self.outcomes)

    def summary(self) -> dict[str, int]:
        """Actions per status, plus `attention`."""
        counts = dict.fromkeys((s.value for s in Status), 0)
        for item in self.outcomes:
            counts[item.status] += 1
        counts["attention"] = len(self.attention)
        return counts

    def devices(self) -> dict[str, int]:
        """Devices per status: each device counted once, by its most serious outcome."""
        worst: dict[tuple[str, str], int] = {}
        for item in self.outcomes:
            key, rank = (item.target, item.device), _SEVERITY.index(item.status)
            worst[key] = min(rank, worst.get(key, rank))
        counts = dict.fromkeys((s.value for s in _SEVERITY), 0)
        for rank in worst.values():
            counts[_SEVERITY[rank]] += 1
        return counts

    def to_dict(self) -> dict[str, object]:
        return {"schema_version": SCHEMA_VERSION,
                "devices": self.devices(),
                "summary": self.summary(),
                "interrupted": self.interrupted or None,
                "actions": [o.to_dict() for o in self.outcomes],
                "attention": [o.to_dict() for o in self.attention],
                "stats": dict(self.stats)}
