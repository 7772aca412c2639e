"""What the planner says to do for one device: the kinds of action, why a device needs none,
and the action itself. Kept apart from the planner so that reading a report imports no key
parsing (the Cloud Function's cold start)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Kind(enum.StrEnum):
    PREAUTHORIZE = "preauthorize"
    PREAUTHORIZE_FORCE = "preauthorize_force"
    ACCEPT = "accept"
    REJECT = "reject"
    DELETE_AUTH_SET = "delete_auth_set"
    DECOMMISSION = "decommission"
    NOTHING = "nothing"


# The kinds that admit a device: a key preauthorized (its first, or the next after a rotation).
ADMITTING = frozenset({Kind.PREAUTHORIZE, Kind.PREAUTHORIZE_FORCE})


class Reason(enum.StrEnum):
    """Why a NOTHING action does nothing."""

    IN_SYNC = "in sync"
    CONFLICT = "conflict"
    NO_USABLE_CREDENTIAL = "no usable credential"
    BLOCKED = "blocked"
    KEY_PROBLEM = "key problem"
    NO_IDENTITY = "no identity"
    NOT_MANAGED = "not managed"
    NOT_IN_REGISTRY = "not in registry"
    DECOMMISSIONING = "decommissioning"
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class Action:
    kind: Kind
    device: str
    identity: Mapping[str, str] | None = None
    pubkey: str | None = None
    mender_id: str | None = None
    auth_id: str | None = None
    reason: Reason | None = None
    detail: str = ""

    @property
    def writes(self) -> bool:
        return self.kind is not Kind.NOTHING
