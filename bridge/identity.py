"""Identity templates and Mender's identity hash.

A template such as `google_iot_id={device.id}` turns a registry device into Mender
`identity_data`. Mender finds devices by sha256 of the Go-canonical JSON of that object
(`encoding/json`: keys sorted, no whitespace, `<>&` and U+2028/9 escaped, raw UTF-8).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from bridge.errors import IdentityError
from bridge.model import RegistryDevice

DEFAULT_TEMPLATE = "google_iot_id={device.id}"
FIELDS = ("device.id", "device.num_id", "registry", "location", "project")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_METADATA = re.compile(r"metadata\[([A-Za-z][A-Za-z0-9\-_.+~%]*)\]")
_ATTRIBUTE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]*")
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}
_GO_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Printable ASCII but `"`, backslash, `<`, `>`, `&`: what Go's JSON encoder writes as it is.
_PLAIN = re.compile(r"[ !#-%'-;=?-\[\]-~]*")


@dataclass(frozen=True)
class IdentityTemplate:
    """Parsed template: attribute name → value pattern with `{field}` placeholders."""

    attributes: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> IdentityTemplate:
        """Parse `name={field}[,name2=literal-{field}…]`; every problem is an IdentityError."""
        attributes: list[tuple[str, str]] = []
        for part in (p.strip() for p in text.split(",")):
            name, sep, pattern = part.partition("=")
            name, pattern = name.strip(), pattern.strip()
            if not sep or not _ATTRIBUTE.fullmatch(name):
                raise IdentityError(
                    f"identity template part {part!r} is not of the form name={{field}}"
                )
            if any(name == seen for seen, _ in attributes):
                raise IdentityError(f"identity attribute {name!r} appears twice")
            if name == "status":
                raise IdentityError("identity attribute 'status' is reserved by Mender")
            stripped = _PLACEHOLDER.sub("", pattern)
            if "{" in stripped or "}" in stripped:
                raise IdentityError(f"unbalanced braces in identity template {pattern!r}")
            for placeholder in _PLACEHOLDER.findall(pattern):
                if placeholder.startswith("metadata[") and not _METADATA.fullmatch(placeholder):
                    raise IdentityError(
                        f"{{{placeholder}}} needs a metadata key that starts with a letter and "
                        "holds only letters, digits and -_.+~%, as in {metadata[serial]}"
                    )
                if placeholder not in FIELDS and not _METADATA.fullmatch(placeholder):
                    raise IdentityError(
                        f"unknown identity field {{{placeholder}}} (known: "
                        + ", ".join(f"{{{f}}}" for f in FIELDS) + ", {metadata[KEY]})"
                    )
            if not pattern:
                raise IdentityError(f"identity attribute {name!r} has an empty value")
            attributes.append((name, pattern))
        return cls(tuple(attributes))

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.attributes)

    @property
    def fields(self) -> frozenset[str]:
        """The fields the template reads: `device.id`, `registry`, ... and `metadata[KEY]`."""
        return frozenset(f for _, pattern in self.attributes for f in _PLACEHOLDER.findall(pattern))

    def uses(self, field: str) -> bool:
        """Whether the template reads `field` (`"metadata"`: any metadata key)."""
        if field == "metadata":
            return any(f.startswith("metadata[") for f in self.fields)
        return field in self.fields

    @property
    def reads_metadata(self) -> bool:
        return self.uses("metadata")

    def render(self, device: RegistryDevice) -> dict[str, str]:
        values = {
            "device.id": device.id,
            "device.num_id": device.num_id,
            "registry": device.ref.registry,
            "location": device.ref.location,
            "project": device.ref.project,
        }

        def substitute(match: re.Match[str]) -> str:
            field = match.group(1)
            meta = _METADATA.fullmatch(field)
            if meta is None:
                return values[field]
            try:
                return device.metadata[meta.group(1)]
            except KeyError:
                raise IdentityError(
                    f"device {device} has no metadata key {meta.group(1)!r} "
                    "that the identity template needs"
                ) from None

        return {name: _PLACEHOLDER.sub(substitute, pattern) for name, pattern in self.attributes}

    def match(self, identity: Mapping[str, object]) -> dict[str, str] | None:
        """The field values this template would have rendered `identity` from, or None when
        it cannot have rendered it (other attributes, a literal part that differs)."""
        if not self.follows(identity):
            return None
        found: dict[str, str] = {}
        for name, pattern in self.attributes:
            fields = _PLACEHOLDER.findall(pattern)
            parts = [re.escape(p) for p in _PLACEHOLDER.split(pattern)[0::2]]
            regex = "(.+?)".join(parts)
            hit = re.fullmatch(regex, str(identity[name]), re.DOTALL)
            if hit is None:
                return None
            for field, value in zip(fields, hit.groups(), strict=True):
                if found.setdefault(field, value) != value:
                    return None
        return found

    def follows(self, identity: Mapping[str, object]) -> bool:
        """Whether a Mender identity has exactly this template's attributes, all strings."""
        return set(identity) == self.names and all(isinstance(v, str) for v in identity.values())


def describe(identity: Mapping[str, object], limit: int = 0) -> str:
    """`a=1,b=2` (sorted), for messages; cut to `limit` characters when given."""
    text = ",".join(f"{k}={v}" for k, v in sorted(identity.items(), key=lambda kv: str(kv[0])))
    return text if not limit or len(text) <= limit else text[:limit - 3] + "..."


def _go_decoded(text: str) -> str:
    """The string Go holds after decoding the JSON the bridge sends: Python writes surrogates as
    `\\uXXXX` escapes, Go's decoder joins valid pairs and turns lone ones into U+FFFD."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _go_string(value: str) -> str:
    # Python's escapes for `"`, `\\`, control characters (`\\b\\f\\n\\r\\t`, else lowercase
    # `\\u00xx`) equal Go's since Go 1.22; Go also escapes `<>&` and U+2028/9 (HTML safety).
    encoded = json.dumps(_go_decoded(value), ensure_ascii=False)
    return _GO_ESCAPE_RE.sub(lambda m: _GO_ESCAPES[m.group(0)], encoded)


def _go_key(key: object) -> str:
    """A mapping key as Python's json module writes it (so as Mender receives it)."""
    if isinstance(key, str):
        return _go_decoded(key)
    if key is None or isinstance(key, bool | int | float):
        try:
            return json.dumps(key, allow_nan=False)
        except ValueError:
            raise IdentityError("identity keys cannot be NaN or infinite") from None
    raise IdentityError(f"identity key of type {type(key).__name__} is not a JSON key")


def _go_number(value: int | float) -> str:
    try:
        number = float(value)  # Go decodes every JSON number into a float64
    except OverflowError:
        raise IdentityError("identity number is too large for a float64") from None
    if not math.isfinite(number):
        raise IdentityError("identity values cannot be NaN or infinite")
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    shortest = repr(number)
    if 1e-6 <= abs(number) < 1e21:
        text = format(Decimal(shortest), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, _, exponent = format(Decimal(shortest), "e").partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"


def canonical_json(value: object) -> str:
    """Serialize as Go's `json.Marshal` does for a decoded `map[string]interface{}`."""
    if isinstance(value, Mapping):
        # Keys that collide once converted keep the last value, as Go's decoder does; Go sorts
        # by UTF-8 bytes, the same order as code points once no surrogate is left.
        items = {_go_key(k): v for k, v in value.items()}
        return "{" + ",".join(
            f"{_go_string(k)}:{canonical_json(items[k])}" for k in sorted(items)
        ) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _go_string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_number(value)
    raise IdentityError(f"identity value of type {type(value).__name__} is not JSON")


def plain_json(identity: Mapping[str, object]) -> str | None:
    """`canonical_json(identity)` when every key and value is a string of plain characters
    (the common case, written directly: nothing to escape, code point order is byte order);
    None otherwise."""
    try:
        text = "".join([*identity, *identity.values()])  # type: ignore[list-item]
    except TypeError:  # a key or value that is not a string
        return None
    if not _PLAIN.fullmatch(text):
        return None
    return "{" + ",".join([f'"{k}":"{identity[k]}"' for k in sorted(identity)]) + "}"


def identity_digest(identity: Mapping[str, object], plain: str | None = None) -> bytes:
    """sha256 of the canonical JSON: the key Mender looks devices up by. `plain`: the
    identity's `plain_json`, when the caller has it already."""
    text = plain or plain_json(identity) or canonical_json(identity)
    return hashlib.sha256(text.encode("utf-8")).digest()


def identity_hash(identity: Mapping[str, object]) -> str:
    """`identity_digest` in hex, as Mender stores it (`id_data_sha256`)."""
    return identity_digest(identity).hex()
