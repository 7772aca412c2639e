"""Mender inventory tags of one target (TAGS): after a device's sync on the event path, and after
a backfill for every device it listed, written only where they differ from what Mender has.

Only the tags TAGS names are touched (a PATCH of those; a PUT guarded by the tags' ETag when
one must go). A device admitted a moment ago has no inventory record yet: the event path
raises a short transient error so the redelivered event tags it; a backfill says the next
sync will. A backfill lists inventory in a thread while it runs: a re-sync of a fleet whose
tags are right is list calls only.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from bridge.actions import ADMITTING
from bridge.backfill.feed import Listed
from bridge.errors import ApiError, AuthError, IdentityError, NotFound, TransientApiError
from bridge.identity import IdentityTemplate, identity_digest
from bridge.model import MENDER_SERVICE, RegistryDevice
from bridge.ports import Inventory, InventoryRecord
from bridge.report import Outcome, Report, Status, Step
from bridge.tags import Tag, TagChange, TagTemplate, Wanted, change, replaced

# Inventory learns of a preauthorized device through a workflow, well under a second on a
# healthy server (docs/mender-api.md#inventory): the event comes back after this long.
RETRY_S = 2.0
NOT_YET = "not yet in inventory; the next sync tags it"
ATTEMPTS = 3  # writes refused for a stale ETag (someone else wrote the tags) before giving up
_WITHOUT = frozenset({Status.SKIPPED, Status.CONFLICT, Status.FAILED, Status.PLANNED})
_ASIDE = frozenset({Step.NOTIFY, Step.TAG})


class Presence(enum.Enum):
    """Whether a sync left the device in Mender: admitted by it, already there, or neither
    (skipped, refused, a conflict, failed)."""

    NEW = "new"
    PRESENT = "present"
    ABSENT = "absent"


def presence(outcomes: Iterable[Outcome]) -> Presence:
    """From a device's outcomes; a notification or a tag says nothing of its auth sets."""
    statuses = [(o.action, o.status) for o in outcomes if o.action not in _ASIDE]
    if not statuses or any(s in _WITHOUT for _, s in statuses):
        return Presence.ABSENT
    if any(a in ADMITTING and s is Status.DONE for a, s in statuses):
        return Presence.NEW
    return Presence.PRESENT


class Tagger:
    """Writes the tags of `template` to the devices of one Mender target."""

    def __init__(self, inventory: Inventory, template: TagTemplate,
                 identity: IdentityTemplate) -> None:
        self.inventory, self.template, self.identity = inventory, template, identity

    def after_sync(self, registry: RegistryDevice, report: Report) -> None:
        """The event path, once the device is synced: TransientApiError (retry soon) when
        Mender has it but inventory does not yet; other transient errors escape too."""
        label = str(registry)
        if presence(o for o in report.outcomes if o.device == label) is Presence.ABSENT:
            return
        try:
            identity = self.identity.render(registry)
            records = self.inventory.find(identity)
        except IdentityError:
            return
        except TransientApiError:
            raise
        except ApiError as exc:
            report.add(Outcome(label, Step.TAG, Status.FAILED, f"cannot read its tags: {exc}"))
            return
        if not records:
            raise TransientApiError(f"{label}: {NOT_YET.split(';')[0]} (admitted a moment ago); "
                                    "its tags are written when the event comes again",
                                    service=MENDER_SERVICE, retry_after=RETRY_S)
        wanted = self.template.render(registry)
        for record in records:
            self.apply(label, record, wanted, report, raise_transient=True)

    def apply(self, label: str, listed: InventoryRecord, wanted: Wanted, report: Report, *,
              dry_run: bool = False, raise_transient: bool = False) -> bool:
        """Bring one record's tags to `wanted`, re-read with its ETag first; True if written.
        `listed` (from a search or a listing) decides whether anything needs a look."""
        first = change(wanted, listed.tags)
        if not first.writes:
            _problems(label, first, report)
            return False
        if dry_run:
            _problems(label, first, report)
            report.add(Outcome(label, Step.TAG, Status.PLANNED, first.describe()))
            return False
        try:
            done = self._write(listed.id, wanted)
        except NotFound:
            report.add(Outcome(label, Step.TAG, Status.SKIPPED, "no longer in inventory"))
            return False
        except AuthError:
            raise
        except ApiError as exc:
            if raise_transient and isinstance(exc, TransientApiError):
                raise
            report.add(Outcome(label, Step.TAG, Status.FAILED, str(exc)))
            return False
        _problems(label, done, report)
        if done.writes:
            report.add(Outcome(label, Step.TAG, Status.DONE, done.describe()))
        return done.writes

    def _write(self, device_id: str, wanted: Wanted) -> TagChange:
        """Read the record (tags and ETag), write what differs; again when the ETag was
        stale, ATTEMPTS times at most. The change written (or found unneeded)."""
        for _ in range(ATTEMPTS):
            record = self.inventory.get(device_id)
            todo = change(wanted, record.tags)
            if not todo.writes:
                return todo
            if todo.remove:  # a PATCH cannot delete: every other tag is sent back as it is
                tags = replaced(record.tags, todo)
            else:
                tags = [Tag(n, v) for n, v in sorted(todo.set.items())]
            if self.inventory.write_tags(device_id, tags, record.etag, replace=bool(todo.remove)):
                return todo
        raise TransientApiError(f"tags of device {device_id} keep changing while they are "
                                "written", service=MENDER_SERVICE, retry_after=RETRY_S)

    def backfill(self, concurrency: int) -> TagPass:
        return TagPass(self, concurrency)


def _problems(label: str, todo: TagChange, report: Report) -> None:
    for problem in todo.problems:
        report.add(Outcome(label, Step.TAG, Status.SKIPPED, f"not sent: {problem}"))


class TagPass:
    """The tags of every device one backfill lists. Enter it before the backfill (inventory is
    listed meanwhile), pass the registry feed through `watch`, then `finish` with the report."""

    def __init__(self, tagger: Tagger, concurrency: int) -> None:
        self.tagger = tagger
        self.concurrency = max(1, concurrency)
        self._wanted: list[tuple[str, bytes, Wanted]] = []
        self._records: dict[bytes, list[InventoryRecord]] = {}
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._list, name="inventory-list", daemon=True)

    def __enter__(self) -> TagPass:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def watch(self, feed: Iterable[Listed]) -> Iterator[Listed]:
        """`feed`, unchanged; remembers the tags each listed device should have."""
        for item in feed:
            for device in item.devices:
                try:
                    digest = identity_digest(self.tagger.identity.render(device))
                except IdentityError:
                    continue
                self._wanted.append((str(device), digest, self.tagger.template.render(device)))
            yield item

    def _list(self) -> None:
        template = self.tagger.identity
        first = template.attributes[0][0]
        names = self.tagger.template.names
        try:
            for record in self.tagger.inventory.iter_records(first):
                if self._stop.is_set():
                    return
                identity = record.device_identity
                if not template.follows(identity):
                    continue
                # Only the bridge's tags are kept; the rest is counted when a write reads it.
                ours = {n: t for n, t in record.tags.items() if n in names}
                self._records.setdefault(identity_digest(identity), []).append(
                    InventoryRecord(record.id, {}, ours))
        except BaseException as exc:  # handed to the backfill's thread in finish()
            self._error = exc

    def finish(self, report: Report, *, dry_run: bool) -> None:
        """Write what differs, `concurrency` devices at a time; AuthError escapes."""
        self._thread.join()
        if isinstance(self._error, ApiError):
            report.add(Outcome("mender", Step.LIST, Status.FAILED,
                               f"tags not written: {self._error}"))
            return
        if self._error is not None:
            raise self._error
        by_device: dict[str, list[Outcome]] = {}
        for item in report.outcomes:
            by_device.setdefault(item.device, []).append(item)
        report.stats["inventory_records"] = sum(len(r) for r in self._records.values())
        work: list[tuple[str, InventoryRecord, Wanted]] = []
        for label, digest, wanted in self._wanted:
            where = presence(by_device.get(label, ()))
            records = self._records.get(digest, [])
            if where is Presence.ABSENT:
                continue
            if not records:
                report.add(Outcome(label, Step.TAG, Status.SKIPPED, NOT_YET))
            work.extend((label, record, wanted) for record in records)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="bridge-tags") as pool:
            written = list(pool.map(
                lambda job: self.tagger.apply(job[0], job[1], job[2], report, dry_run=dry_run),
                work))
        report.stats["tag_writes"] = sum(written)
