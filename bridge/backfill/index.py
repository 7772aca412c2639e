"""Mender's devices by identity digest, compact enough for a million: each device packed in one
bytes object (its id, identity, status and auth sets, each key as a 16-byte digest instead of
its PEM) under a 16-byte key, about 220 bytes a device instead of a few kilobytes of objects.

A device is unpacked when a registry device claims it (then its keys are matched against that
device's PEMs) or, unclaimed, at the end of the run.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping

from bridge.identity import identity_digest, plain_json
from bridge.model import AuthSet, AuthStatus, MenderDevice

DIGEST_BYTES = 16  # collisions among 10^6 devices: ~10^-27; a second preimage: 2^128 work
_STATUSES = tuple(AuthStatus)
_CODES = {status: code for code, status in enumerate(_STATUSES)}
_HEAD = struct.Struct("<BBI")  # status, decommissioning, number of auth sets
_LENGTH = struct.Struct("<I")


def digest_of(identity: Mapping[str, object], plain: str | None = None) -> bytes:
    """Mender's identity hash (bridge.identity.identity_digest), cut to DIGEST_BYTES."""
    return identity_digest(identity, plain)[:DIGEST_BYTES]


def key_digest(pem: str) -> bytes:
    return hashlib.sha256(pem.encode("utf-8", "surrogatepass")).digest()[:DIGEST_BYTES]


def unknown_key(digest: bytes) -> str:
    """Stands for a key that matched no registry PEM: not a PEM, so equal to none."""
    return f"(key sha256 {digest.hex()}…)"


def _text(out: list[bytes], text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")  # JSON may carry lone surrogates
    out += (_LENGTH.pack(len(raw)), raw)


def _read(blob: bytes, at: int) -> tuple[str, int]:
    (size,) = _LENGTH.unpack_from(blob, at)
    at += _LENGTH.size
    return blob[at:at + size].decode("utf-8", "surrogatepass"), at + size


def pack(device: MenderDevice, identity_json: str | None = None) -> bytes:
    """`identity_json`: the identity as JSON, when the caller has written it already."""
    sets = device.auth_sets or ()
    out = [_HEAD.pack(_CODES[device.status], device.decommissioning, len(sets))]
    _text(out, device.id)
    _text(out, identity_json or json.dumps(device.identity_data, ensure_ascii=False,
                                           separators=(",", ":")))
    for aset in sets:
        _text(out, aset.id)
        out += (key_digest(aset.pubkey), bytes((_CODES[aset.status],)))
    return b"".join(out)


def unpack(blob: bytes, key: Callable[[bytes], str]) -> MenderDevice:
    """The device packed in `blob`; `key(digest)` gives each auth set's PEM back."""
    status, decommissioning, count = _HEAD.unpack_from(blob)
    device_id, at = _read(blob, _HEAD.size)
    identity, at = _read(blob, at)
    sets = []
    for _ in range(count):
        auth_id, at = _read(blob, at)
        digest, at = blob[at:at + DIGEST_BYTES], at + DIGEST_BYTES
        sets.append(AuthSet(auth_id, key(digest), _STATUSES[blob[at]]))
        at += 1
    return MenderDevice(device_id, json.loads(identity), _STATUSES[status],
                        bool(decommissioning), tuple(sets))


class MenderIndex:
    """Mender devices whose identity `follows` the template, by identity digest."""

    def __init__(self, follows: Callable[[Mapping[str, object]], bool]) -> None:
        self._follows = follows
        self._entries: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, device: MenderDevice) -> None:
        identity = device.identity_data
        if self._follows(identity):
            plain = plain_json(identity)
            # Its JSON is json.dumps' (so unpacked in the same key order) if sorted already.
            kept = plain if plain is not None and list(identity) == sorted(identity) else None
            self._entries[digest_of(identity, plain)] = pack(device, kept)

    def claim(self, digest: bytes, *pems: Callable[[], Iterable[str]]) -> MenderDevice | None:
        """Take the device of `digest` out of the index. Its auth sets' keys are matched against
        the PEMs each of `pems` gives, tried in turn while a key is still unmatched (the
        cheapest first); a key none matches stands as `unknown_key`."""
        blob = self._entries.pop(digest[:DIGEST_BYTES], None)
        if blob is None:
            return None
        known: dict[bytes, str] = {}
        wanted = set(_set_digests(blob))
        for source in pems:
            if wanted <= known.keys():
                break
            known.update((key_digest(pem), pem) for pem in source())
        return unpack(blob, lambda d: known.get(d) or unknown_key(d))

    def remaining(self) -> Iterator[MenderDevice]:
        """The devices no registry device claimed."""
        for blob in self._entries.values():
            yield unpack(blob, unknown_key)


def _set_digests(blob: bytes) -> Iterator[bytes]:
    _, _, count = _HEAD.unpack_from(blob)
    _, at = _read(blob, _HEAD.size)
    _, at = _read(blob, at)
    for _ in range(count):
        _, at = _read(blob, at)
        yield blob[at:at + DIGEST_BYTES]
        at += DIGEST_BYTES + 1
