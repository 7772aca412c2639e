"""PEM blocks of a text, found in time linear in its length (no regular expressions).

A lazy regular expression with a back-reference to the label retries from every BEGIN line, so
64 KiB of repeated BEGIN lines cost seconds; this scanner reads each byte a bounded number of
times, and stops at the first BEGIN line that has no END line.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from bridge.errors import InvalidKeyError

BEGIN = b"-----BEGIN "
DASHES = b"-----"
MAX_LABEL = 64  # the longest label in RFC 7468 is 22 characters
_LABEL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")


@dataclass(frozen=True)
class Block:
    """One `-----BEGIN LABEL-----` … `-----END LABEL-----` block; `body` is the text between."""

    label: str
    body: bytes

    def der(self) -> bytes:
        """The body's base64 (whitespace ignored, nothing else allowed), decoded."""
        try:
            der = base64.b64decode(b"".join(self.body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidKeyError(f"PEM block {self.label} is not valid base64") from None
        if not der:
            raise InvalidKeyError(f"PEM block {self.label} is empty")
        return der


def _label_at(data: bytes, start: int) -> tuple[bytes, int] | None:
    """The label of a BEGIN line whose label starts at `start`, and where its dashes end."""
    end = data.find(DASHES, start, start + MAX_LABEL + len(DASHES))
    label = data[start:end] if end != -1 else b""
    if not label or label != label.strip() or not _LABEL.issuperset(label):
        return None
    return label, end + len(DASHES)


def blocks(data: bytes) -> list[Block]:
    """Every block in order. Text around and between blocks is ignored; a BEGIN line without
    its END line is an error. Each search starts where the previous one ended: linear."""
    found: list[Block] = []
    pos = 0
    while (begin := data.find(BEGIN, pos)) != -1:
        parsed = _label_at(data, begin + len(BEGIN))
        if parsed is None:  # not a BEGIN line after all (lowercase, no dashes, too long)
            pos = begin + len(BEGIN)
            continue
        label, body_start = parsed
        end_line = b"-----END " + label + DASHES
        end = data.find(end_line, body_start)
        name = label.decode("ascii")
        if end == -1:
            raise InvalidKeyError(f"PEM block {name} has no matching END line (truncated?)")
        found.append(Block(name, data[body_start:end]))
        pos = end + len(end_line)
    return found
