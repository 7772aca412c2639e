"""Identity data as Mender keys it: Go's `json.Marshal` of a decoded map, hashed with SHA-256.

Go decodes every number to float64 and re-encodes maps with sorted keys, no whitespace, and
`<`, `>`, `&`, U+2028, U+2029 escaped; equal identities therefore hash equal whatever their
key order, spacing or number spelling.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from decimal import Decimal
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
               "\u2028": "\\u2028", "\u2029": "\\u2029"}


class JsonError(ValueError):
    """The text is not JSON Go would decode into interface{} values."""


def _reject_constant(name: str) -> float:
    raise JsonError(f"invalid character '{name[0]}' looking for beginning of value")


def loads(text: str | bytes) -> Any:
    """Decode JSON like Go: no NaN/Infinity, numbers must fit a float64."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except JsonError:
        raise
    except (ValueError, RecursionError) as exc:
        raise JsonError(str(exc)) from None
    _check_numbers(value)
    return value


def _check_numbers(value: Any) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | float):
        try:
            if math.isinf(float(value)):
                raise OverflowError
        except OverflowError:
            raise JsonError(f"cannot unmarshal number {value} into Go value of type float64") \
                from None
    elif isinstance(value, list):
        for item in value:
            _check_numbers(item)
    elif isinstance(value, dict):
        for item in value.values():
            _check_numbers(item)


def go_float(number: float) -> str:
    """strconv-style shortest float64 text, as encoding/json writes it."""
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    magnitude = abs(number)
    exact = Decimal(repr(number)).normalize()
    if magnitude < 1e-6 or magnitude >= 1e21:
        sign, digits, exponent = exact.as_tuple()
        assert isinstance(exponent, int)
        text = "".join(str(d) for d in digits)
        sci = exponent + len(digits) - 1
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        # Go writes at least two exponent digits, then trims "e-07" to "e-7".
        exp = f"{'-' if sci < 0 else '+'}{abs(sci):02d}"
        if sci < 0 and abs(sci) < 10:
            exp = f"-{abs(sci)}"
        return ("-" if sign else "") + mantissa + "e" + exp
    return format(exact, "f")


def _go_string(text: str) -> str:
    text = _LONE_SURROGATE.sub("\ufffd", text)
    encoded = json.dumps(text, ensure_ascii=False)
    return "".join(_GO_ESCAPES.get(ch, ch) for ch in encoded)


def dumps(value: Any) -> str:
    """Go-canonical JSON of a decoded value (keys sorted by their UTF-8 bytes)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, int | float):
        return go_float(float(value))
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: _LONE_SURROGATE.sub("\ufffd", k).encode("utf-8"))
        return "{" + ",".join(_go_string(k) + ":" + dumps(value[k]) for k in keys) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def identity_hash(identity: dict[str, Any]) -> bytes:
    """sha256 of the canonical JSON: the key deviceauth stores and looks devices up by."""
    return hashlib.sha256(dumps(identity).encode("utf-8")).digest()


def go_type(value: Any) -> str:
    """The JSON kind Go names in its unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"
