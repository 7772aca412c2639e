"""Registry metadata → Mender inventory tags (TAGS): the tag template, Mender's limits on tags,
and what to write for one device given the tags it has. The bridge owns only the tags TAGS
names; any other tag on a device is a person's and is kept as it is. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.errors import IdentityError
from bridge.identity import IdentityTemplate
from bridge.model import RegistryDevice

# inventory's `limit_tags` default, and hosted Mender's limit (docs/mender-api.md#inventory).
MAX_TAGS = 20
# inventory's model.DeviceAttribute: a name of 1 to 1024 characters.
MAX_NAME = 1024
# Mender sets no limit of its own on a string value but its 1 MiB request body; Cloud IoT's own
# metadata values stop at 32 KB, and 20 tags of that size stay far under the body limit.
MAX_VALUE_BYTES = 32 * 1024


@dataclass(frozen=True)
class Tag:
    """One inventory tag as Mender holds it; a person's tag may have any JSON value."""

    name: str
    value: object
    description: str | None = None


@dataclass(frozen=True)
class Wanted:
    """The bridge's tags for one device: `values` by tag name (None: the device lacks the
    metadata the tag reads, so the tag must not be there), `problems`: values Mender would
    not keep as they are, reported and not sent."""

    values: Mapping[str, str | None] = field(hash=False)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class TagChange:
    """What to write: `set` by PATCH; `remove` needs a PUT of every other tag (a PATCH cannot
    delete); `problems` are reported and nothing of them is written."""

    set: Mapping[str, str] = field(default_factory=dict, hash=False)
    remove: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def writes(self) -> bool:
        return bool(self.set or self.remove)

    def describe(self) -> str:
        parts = [f"{n}={_shown(v)}" for n, v in sorted(self.set.items())]
        parts += [f"-{n}" for n in self.remove]
        return ", ".join(parts)


@dataclass(frozen=True)
class TagTemplate:
    """TAGS parsed: tag name → a one-attribute template (`name={field}` syntax)."""

    tags: tuple[tuple[str, IdentityTemplate], ...]

    @classmethod
    def parse(cls, text: str) -> TagTemplate:
        """IdentityError for a malformed template, a name Mender refuses, or too many tags."""
        if not text.strip():
            return cls(())
        parsed = IdentityTemplate.parse(text)
        for name, _ in parsed.attributes:
            if len(name) > MAX_NAME:
                raise IdentityError(f"tag name {name[:40]!r}... is longer than Mender's "
                                    f"{MAX_NAME} characters")
        if len(parsed.attributes) > MAX_TAGS:
            raise IdentityError(f"{len(parsed.attributes)} tags: Mender keeps at most "
                                f"{MAX_TAGS} per device")
        return cls(tuple((name, IdentityTemplate(((name, pattern),)))
                         for name, pattern in parsed.attributes))

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.tags)

    def uses(self, field_name: str) -> bool:
        """Whether a tag reads `field_name` (`"metadata"`: any metadata key)."""
        return any(one.uses(field_name) for _, one in self.tags)

    def __bool__(self) -> bool:
        return bool(self.tags)

    def render(self, device: RegistryDevice) -> Wanted:
        values: dict[str, str | None] = {}
        problems: list[str] = []
        for name, one in self.tags:
            try:
                value = one.render(device)[name]
            except IdentityError:
                values[name] = None  # the metadata key is not there: neither is the tag
                continue
            problem = value_problem(name, value)
            if problem:
                problems.append(problem)
            else:
                values[name] = value
        return Wanted(values, tuple(problems))


def value_problem(name: str, value: str) -> str:
    """Why Mender would not keep `value` as it is ('' when it would)."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        # A lone surrogate: Mender stores U+FFFD instead, so the tag would never read back
        # equal and every sync would write it again.
        return f"tag {name}: the value is not valid Unicode text"
    if size > MAX_VALUE_BYTES:
        return f"tag {name}: the value has {size} bytes, more than {MAX_VALUE_BYTES}"
    return ""


def change(wanted: Wanted, current: Mapping[str, Tag]) -> TagChange:
    """What turns the device's `current` tags into the wanted ones, touching only the tags
    `wanted` names. A tag whose value has a problem is left as Mender has it."""
    writes = {n: v for n, v in wanted.values.items()
              if v is not None and not _same(current.get(n), v)}
    remove = tuple(sorted(n for n, v in wanted.values.items() if v is None and n in current))
    problems = list(wanted.problems)
    count = len(set(current) | set(writes)) - len(remove)
    if count > MAX_TAGS and (writes.keys() - current.keys()):
        problems.append(f"the device would have {count} tags; Mender keeps at most {MAX_TAGS} "
                        "(remove some of its other tags)")
        writes = {n: v for n, v in writes.items() if n in current}
    return TagChange(writes, remove, tuple(problems))


def replaced(current: Mapping[str, Tag], change_: TagChange) -> list[Tag]:
    """Every tag after `change_`: the body of a PUT, which replaces all of a device's tags."""
    out = [t for n, t in current.items() if n not in change_.remove and n not in change_.set]
    out += [Tag(n, v) for n, v in change_.set.items()]
    return out


def _same(tag: Tag | None, value: str) -> bool:
    return tag is not None and isinstance(tag.value, str) and tag.value == value


def _shown(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit - 3] + "..."
