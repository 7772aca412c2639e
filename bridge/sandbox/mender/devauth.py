"""deviceauth's rules for preauthorization, device authentication requests and the device JWT
check the gateway asks for on every device API call (devauth.go: PreauthorizeDevice,
SubmitAuthRequest, VerifyToken; docs/mender-api.md).

Like deviceauth, which writes MongoDB without transactions, a step that fails after others
(a 500, a refused request) keeps what was written before it; inventory learns of changes
through workflow jobs started once the write is committed.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from bridge.sandbox.mender import canonical, inventory
from bridge.sandbox.mender.authsets import limit_reached, update_device_status
from bridge.sandbox.mender.crypto import KeyDecodeError, normalize_pubkey, verify_signature
from bridge.sandbox.mender.state import SandboxState
from bridge.sandbox.mender.store import Tx, device_json, now_ts
from bridge.sandbox.mender.web import ApiError
from bridge.sandbox.mender.workflows import Job

UNAUTHORIZED = "dev auth: unauthorized"
INTERNAL = "internal error"


@dataclass(frozen=True)
class Granted:
    device_id: str
    auth_set_id: str


def preauthorize(sandbox: SandboxState, identity: dict[str, Any], pubkey: str,
                 force: bool) -> tuple[str, dict[str, Any] | None]:
    """(id for Location, None) → 201; ("", device) → 409. ApiError 500 under the
    `lose_authset_on_preauth` fault, after the device (without its auth set) is written."""
    jobs: list[Job] = []
    with sandbox.store.tx() as tx:
        outcome = _preauthorize(tx, jobs, identity, pubkey, force,
                                sandbox.faults.lose_authset_on_preauth)
    sandbox.inventory(*jobs)
    if outcome is None:
        raise ApiError(500, INTERNAL)
    return outcome


def _preauthorize(tx: Tx, jobs: list[Job], identity: dict[str, Any], pubkey: str, force: bool,
                  lose_authset: bool) -> tuple[str, dict[str, Any] | None] | None:
    id_hash = canonical.identity_hash(identity)
    new_id = str(uuid.uuid4())
    existing = tx.device_by_hash(id_hash)
    if existing is not None:
        if not force:
            return "", device_json(tx, existing, with_sets=False)
        # UpsertAuthSetStatus: flips a set with this key whatever its status (and whatever
        # device it names); the device status is left as it was (a FIXME in deviceauth).
        if not tx.run("UPDATE auth_sets SET status = 'preauthorized' "
                      "WHERE id_hash = ? AND pubkey = ?", id_hash, pubkey):
            tx.insert_auth_set(existing["id"], id_hash, pubkey, "preauthorized")
        return new_id, None  # Location names a fresh id, not the existing device: kept
    tx.insert_device(new_id, id_hash, canonical.dumps(identity), "preauthorized")
    if lose_authset:
        # 4.1.3 starts the status workflow before writing the auth set; this is its failure.
        return None
    jobs.append(inventory.status_job(new_id, "preauthorized"))
    if tx.one("SELECT 1 FROM auth_sets WHERE id_hash = ? AND pubkey = ?", id_hash, pubkey):
        # An auth set left by a deleted device (4.1.3) holds this key: AddAuthSet conflicts.
        created = tx.device(new_id)
        assert created is not None
        return "", device_json(tx, created, with_sets=False)
    tx.insert_auth_set(new_id, id_hash, pubkey, "preauthorized")
    jobs.append(inventory.identity_job(new_id, identity))
    return new_id, None


def parse_auth_request(body: bytes) -> tuple[dict[str, Any], str, bytes]:
    """(identity, normalized pubkey, identity hash) of an auth request, or 400."""
    try:
        data = canonical.loads(body)
    except canonical.JsonError as exc:
        raise ApiError(400, f"failed to decode auth request: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "failed to decode auth request: json: cannot unmarshal "
                            f"{canonical.go_type(data)} into Go value of type model.AuthReq")
    for field in ("id_data", "pubkey", "tenant_token"):
        if field in data and data[field] is not None and not isinstance(data[field], str):
            raise ApiError(400, f"failed to decode auth request: json: cannot unmarshal "
                                f"{canonical.go_type(data[field])} into Go struct field "
                                f"AuthReq.{field} of type string")
    if not data.get("id_data"):
        raise ApiError(400, "invalid auth request: id_data must be provided")
    if not data.get("pubkey"):
        raise ApiError(400, "invalid auth request: pubkey must be provided")
    try:
        identity = canonical.loads(data["id_data"])
    except canonical.JsonError as exc:
        raise ApiError(400, f"invalid auth request: {exc}") from None
    if not isinstance(identity, dict) or not identity:
        raise ApiError(400, "invalid auth request: id_data must be a non-empty JSON object")
    try:
        pubkey = normalize_pubkey(data["pubkey"])
    except KeyDecodeError as exc:
        raise ApiError(400, f"invalid auth request: {exc}") from None
    return identity, pubkey, canonical.identity_hash(identity)


def authenticate(sandbox: SandboxState, body: bytes, signature: str | None) -> Granted:
    """The auth_requests rules (signature checked first, as in deviceauth main): Granted, or
    ApiError 400/401 (500 where deviceauth fails on an inconsistent store)."""
    identity, pubkey, id_hash = parse_auth_request(body)
    if not signature:
        raise ApiError(400, "missing request signature header")
    if not verify_signature(pubkey, signature, body):
        raise ApiError(401, "signature verification failed")
    jobs: list[Job] = []
    with sandbox.store.tx() as tx:
        outcome = _authenticate(tx, jobs, identity, pubkey, id_hash, sandbox.max_devices)
    sandbox.inventory(*jobs)
    # Raised after the commit: a first request's pending auth set is kept.
    if isinstance(outcome, ApiError):
        raise outcome
    return outcome


def _authenticate(tx: Tx, jobs: list[Job], identity: dict[str, Any], pubkey: str,
                  id_hash: bytes, max_devices: int) -> Granted | ApiError:
    auth = tx.one("SELECT * FROM auth_sets WHERE id_hash = ? AND pubkey = ? "
                  "AND status = 'preauthorized'", id_hash, pubkey)
    if auth is not None:
        return _accept_preauthorized(tx, jobs, auth["id"], auth["device_id"], max_devices)
    device = tx.device_by_hash(id_hash)
    if device is None:
        device_id = str(uuid.uuid4())
        tx.insert_device(device_id, id_hash, canonical.dumps(identity), "noauth")
        jobs.append(inventory.identity_job(device_id, identity))
        device = tx.device(device_id)
        assert device is not None
    if device["decommissioning"]:
        return ApiError(401, UNAUTHORIZED)
    tx.run("INSERT OR IGNORE INTO auth_sets VALUES (?, ?, ?, ?, 'pending', ?)",
           str(uuid.uuid4()), device["id"], id_hash, pubkey, now_ts())
    if not update_device_status(tx, jobs, device["id"], None, device["status"]):
        return ApiError(500, INTERNAL)
    auth = tx.one("SELECT * FROM auth_sets WHERE id_hash = ? AND pubkey = ?", id_hash, pubkey)
    if auth is None or auth["status"] != "accepted":
        return ApiError(401, UNAUTHORIZED)
    return Granted(auth["device_id"], auth["id"])


def _accept_preauthorized(tx: Tx, jobs: list[Job], auth_id: str, device_id: str,
                          max_devices: int) -> Granted | ApiError:
    """handlePreAuthDevice: the preauthorized set becomes the device's one accepted set."""
    device = tx.device(device_id)
    if device is None:  # a set left by a device deleted with its preauthorized set (4.1.3)
        return ApiError(500, INTERNAL)
    if device["decommissioning"]:
        return ApiError(401, UNAUTHORIZED)
    if device["status"] != "accepted" and limit_reached(tx, max_devices):
        return ApiError(401, "unauthorized")
    # The key rotation: the previously accepted set is rejected (its token then fails).
    tx.run("UPDATE auth_sets SET status = 'rejected' WHERE device_id = ? "
           "AND status = 'accepted'", device_id)
    tx.run("UPDATE auth_sets SET status = 'accepted' WHERE id = ?", auth_id)
    update_device_status(tx, jobs, device_id, "accepted", device["status"])
    return Granted(device_id, auth_id)


def verify_device_token(sandbox: SandboxState, header: str | None) -> str:
    """deviceauth's VerifyToken for the gateway: the device id of a valid device JWT whose
    auth set is accepted and whose device is not being decommissioned; else 401 (403 when
    expired), with no body, as the gateway passes deviceauth's answer on."""
    token = (header or "").replace("Bearer", "", 1).replace("bearer", "", 1).strip()
    if not token:
        raise ApiError(401, "Authorization not present in header")
    try:
        claims = jwt.decode(token, sandbox.useradm.public, algorithms=["RS256"],
                            options={"require": ["sub", "jti"], "verify_exp": False})
    except jwt.PyJWTError:
        raise ApiError(401, "", empty=True) from None
    if claims.get("mender.device") is not True:
        raise ApiError(401, "", empty=True)
    expired = "exp" in claims and claims["exp"] <= time.time()
    with sandbox.store.tx() as tx:
        outcome = _verify(tx, str(claims["jti"]), expired)
    if outcome is not None:
        raise outcome  # after the commit: an expired token stays deleted
    return str(claims["sub"])


def _verify(tx: Tx, jti: str, expired: bool) -> ApiError | None:
    if expired:
        # handleExpiredToken deletes the token, then answers 403.
        gone = tx.run("DELETE FROM device_tokens WHERE jti = ?", jti)
        return ApiError(403 if gone else 401, "", empty=True)
    if tx.one("SELECT 1 FROM device_tokens WHERE jti = ?", jti) is None:
        return ApiError(401, "", empty=True)
    auth = tx.auth_set(jti)
    if auth is None or auth["status"] != "accepted":
        return ApiError(401, "", empty=True)
    device = tx.device(auth["device_id"])
    if device is None:
        return ApiError(500, INTERNAL)
    if device["decommissioning"]:
        return ApiError(401, "", empty=True)
    tx.update_device(device["id"], "check_in_time", now_ts())
    return None
