"""HTTP request bodies as hostile input: read with a byte cap, parsed as UTF-8 JSON with a
nesting limit, every string checked to be valid Unicode. Each failure is a `BodyError` with
an HTTP status and a one-line reason, never an unexpected exception.
"""

from __future__ import annotations

import json
from typing import IO, Any

MAX_BODY = 1 << 20
MAX_DEPTH = 32
_CHUNK = 64 * 1024


class BodyError(ValueError):
    """A body the endpoint refuses: `status` (400 or 413) and a one-line `reason`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_capped(stream: IO[bytes], content_length: int | None, cap: int = MAX_BODY) -> bytes:
    """The whole body, refused (413) before any of it is read if it announces more than `cap`
    bytes, and as soon as it passes `cap` otherwise (chunked)."""
    too_large = BodyError(413, f"the body is larger than {cap} bytes")
    if content_length is not None and content_length > cap:
        raise too_large
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(min(_CHUNK, cap + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > cap:
            raise too_large
    return b"".join(chunks)


def parse_json(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """`data` as JSON: UTF-8, no NaN or Infinity, at most `max_depth` levels of nesting, no
    lone surrogate in any string or key."""
    deep = BodyError(400, f"the JSON body nests deeper than {max_depth} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "the body is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise deep from None
    except json.JSONDecodeError as exc:
        raise BodyError(400, f"the body is not JSON: {exc.msg} at character {exc.pos}") from None
    except ValueError as exc:  # a number too long to convert, NaN, Infinity
        raise BodyError(400, f"the body is not acceptable JSON: {exc}") from None
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise deep
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError(400, "the JSON body holds a lone surrogate (\\ud800-\\udfff), "
                             "which is not Unicode text") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
