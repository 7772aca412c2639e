"""deviceauth's auth-set status changes, auth-set deletion, decommissioning and the device
status it derives from the auth sets (devauth.go: AcceptDeviceAuth, RejectDeviceAuth,
ResetDeviceAuth, setAuthSetStatus, DeleteAuthSet, DecommissionDevice, updateDeviceStatus),
as released in Mender 4.1.3 (docs/mender-api.md).
"""

from __future__ import annotations

import json

from bridge.sandbox.faults import PreauthSetDelete
from bridge.sandbox.mender import inventory
from bridge.sandbox.mender.state import SandboxState
from bridge.sandbox.mender.store import BrokenStatus, Tx
from bridge.sandbox.mender.web import ApiError
from bridge.sandbox.mender.workflows import Job

BAD_REQUEST = "dev auth: bad request"
INTERNAL = "internal error"


def limit_reached(tx: Tx, max_devices: int) -> bool:
    # main: -1 = unlimited, 0 = no device may be accepted.
    return max_devices >= 0 and tx.accepted_count() >= max_devices


def update_device_status(tx: Tx, jobs: list[Job], device_id: str, status: str | None,
                         current: str) -> bool:
    """updateDeviceStatus: store `status` (or, when None, the status derived from the auth
    sets) unless the derived status equals `current` (which callers pass as the *changed auth
    set's* former status, a deviceauth quirk); start the inventory status job. False when the
    status is needed but cannot be derived (deviceauth answers 500, keeping earlier writes)."""
    try:
        derived: str | None = tx.derived_status(device_id)
    except BrokenStatus:
        derived = None
    if derived == current:
        return True
    if status is None:
        if derived is None:
            return False
        status = derived
    jobs.append(inventory.status_job(device_id, status))
    tx.update_device(device_id, "status", status)
    return True


def set_status(sandbox: SandboxState, device_id: str, aid: str, status: str) -> None:
    """PUT …/auth/{aid}/status: accepted, rejected or pending (anything else is 400)."""
    if status not in ("accepted", "rejected", "pending"):
        raise ApiError(400, "incorrect device status")
    jobs: list[Job] = []
    with sandbox.store.tx() as tx:
        outcome = _set_status(tx, jobs, device_id, aid, status, sandbox.max_devices)
    sandbox.inventory(*jobs)
    if outcome is not None:
        raise outcome


def _set_status(tx: Tx, jobs: list[Job], device_id: str, aid: str, status: str,
                max_devices: int) -> ApiError | None:
    auth = tx.auth_set(aid)
    if auth is None:
        return ApiError(404, "authorization set not found")
    current = auth["status"]
    if status == "accepted":
        if current == "accepted":
            return None
        if current not in ("pending", "rejected"):
            return ApiError(400, BAD_REQUEST)
        if tx.device(device_id) is None:
            return ApiError(404, "device not found")
        # 4.1.3 checks the limit even when the device already has an accepted set.
        if limit_reached(tx, max_devices):
            return ApiError(422, "maximum number of accepted devices reached")
    elif (status, current) in (("rejected", "rejected"), ("rejected", "preauthorized"),
                               ("pending", "preauthorized")):
        return ApiError(400, BAD_REQUEST)
    if auth["device_id"] != device_id:
        return ApiError(400, "dev auth: dev ID and auth ID mismatch")
    if current == status:
        return None
    if current == "accepted":
        tx.run("DELETE FROM device_tokens WHERE device_id = ?", device_id)
    if status == "accepted":
        # One accepted set per device: the others are rejected (their tokens then fail).
        tx.run("UPDATE auth_sets SET status = 'rejected' WHERE device_id = ? "
               "AND status = 'accepted'", device_id)
    tx.run("UPDATE auth_sets SET status = ? WHERE id = ?", status, aid)
    explicit = status if status == "accepted" else None
    if not update_device_status(tx, jobs, device_id, explicit, current):
        return ApiError(500, INTERNAL)
    return None


def get_status(sandbox: SandboxState, aid: str) -> str:
    # deviceauth reads the set by aid alone, whatever device the path names.
    with sandbox.store.read() as tx:
        auth = tx.auth_set(aid)
    if auth is None:
        raise ApiError(404, "authorization set not found")
    return str(auth["status"])


def delete_auth_set(sandbox: SandboxState, device_id: str, aid: str) -> None:
    jobs: list[Job] = []
    with sandbox.store.tx() as tx:
        outcome = _delete_auth_set(tx, jobs, device_id, aid, sandbox.faults.preauth_set_delete)
    sandbox.inventory(*jobs)
    if outcome is not None:
        raise outcome


def _delete_auth_set(tx: Tx, jobs: list[Job], device_id: str, aid: str,
                     mode: PreauthSetDelete) -> ApiError | None:
    auth = tx.auth_set(aid)
    if auth is None or not tx.run("DELETE FROM auth_sets WHERE id = ? AND device_id = ?",
                                  aid, device_id):
        return ApiError(404, "", empty=True)
    if auth["status"] == "accepted":
        tx.run("DELETE FROM device_tokens WHERE device_id = ?", device_id)
    elif auth["status"] == "preauthorized" and (
            mode is PreauthSetDelete.DEVICE or not tx.auth_sets(device_id)):
        # The device row goes (inventory is told "decommissioned"); in 4.1.3 its other auth
        # sets and tokens stay behind, attached to no device.
        jobs.append(inventory.status_job(device_id, "decommissioned"))
        if not tx.run("DELETE FROM devices WHERE id = ?", device_id):
            return ApiError(500, INTERNAL)
        return None
    if not update_device_status(tx, jobs, device_id, None, auth["status"]):
        return ApiError(500, INTERNAL)
    return None


def decommission(sandbox: SandboxState, device_id: str) -> None:
    """DELETE …/devices/{id}: `decommissioning` now, removal by the decommission_device
    workflow after `decommission_delay_ms` (inventory first, deviceauth's record last); with
    no delay, removed in this request."""
    delay = sandbox.faults.decommission_delay_ms / 1000.0
    with sandbox.store.tx() as tx:
        if tx.device(device_id) is None:
            raise ApiError(404, "", empty=True)
        if delay <= 0:
            removal_job(device_id)(tx)
            return
        tx.update_device(device_id, "decommissioning", 1)
    sandbox.workflows.submit(delay, removal_job(device_id))


def removal_job(device_id: str) -> Job:
    """The end of decommission_device: inventory's record, then deviceauth's."""
    def run(tx: Tx) -> None:
        inventory.delete(tx, device_id)
        tx.delete_device(device_id)
    return run


def resume(sandbox: SandboxState) -> None:
    """After a restart (jobs live in memory): give inventory the devices it lacks, as
    deviceauth's propagate maintenance commands do, and finish pending decommissions."""
    with sandbox.store.read() as tx:
        missing = tx.all("SELECT * FROM devices d WHERE NOT EXISTS (SELECT 1 FROM inv_devices i "
                         "WHERE i.id = d.id) AND EXISTS (SELECT 1 FROM auth_sets a "
                         "WHERE a.device_id = d.id)")
        leaving = [r["id"] for r in tx.all("SELECT id FROM devices WHERE decommissioning = 1")]
    for row in missing:
        sandbox.workflows.submit(0, inventory.identity_job(row["id"], json.loads(row["identity"])),
                                 inventory.status_job(row["id"], row["status"]))
    for device_id in leaving:
        sandbox.workflows.submit(sandbox.faults.decommission_delay_ms / 1000.0,
                                 removal_job(device_id))
