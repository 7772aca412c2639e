"""Which registries the bridge serves: the configured project, location and registries.

Every name from outside is checked here before anything is read or written: a device of a
registry outside the scope is never touched, whatever an event or a request says. With no
registries configured, the scope is every registry of the project and location.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bridge import names
from bridge.errors import InputError
from bridge.model import DeviceChange, RegistryRef


@dataclass(frozen=True)
class Scope:
    """The configured registries (any project and location), or, when none is configured,
    every registry of `project` and `location`."""

    project: str
    location: str
    registries: frozenset[RegistryRef] = frozenset()

    @classmethod
    def of(cls, project: str, location: str, registries: Iterable[str] = ()) -> Scope:
        """A scope from settings: registries by id (in `project`, `location`) or full path;
        every name is validated (InputError naming the setting)."""
        names.project_id(project, "IOT_PROJECT")
        names.location(location, "IOT_LOCATION")
        refs = frozenset(names.parse_registry(r, project=project, location_=location,
                                              what="IOT_REGISTRIES entry")
                         for r in registries)
        return cls(project, location, refs)

    @property
    def refs(self) -> list[RegistryRef]:
        """The configured registries (empty when the scope is the whole location)."""
        return sorted(self.registries, key=lambda r: r.path)

    def covers(self, ref: RegistryRef) -> bool:
        if self.registries:
            return ref in self.registries
        return (ref.project, ref.location) == (self.project, self.location)

    def check(self, ref: RegistryRef) -> RegistryRef:
        """`ref` validated and inside the scope; InputError naming what is outside."""
        names.registry_ref(ref.project, ref.location, ref.registry)
        if self.covers(ref):
            return ref
        if self.registries:
            shown = ", ".join(r.registry if (r.project, r.location) == (self.project,
                              self.location) else r.path for r in self.refs)
            raise InputError(f"registry {ref.path} is not one of the configured registries "
                             f"({shown})")
        raise InputError(f"registry {ref.path} is outside the configured project and "
                         f"location (projects/{self.project}/locations/{self.location})")

    def registry(self, text: str) -> RegistryRef:
        """A registry by id or full path, validated and inside the scope."""
        return self.check(names.parse_registry(text, project=self.project,
                                               location_=self.location))

    def check_change(self, change: DeviceChange) -> DeviceChange:
        """An event's registry in scope and its device names valid; InputError otherwise."""
        self.check(change.ref)
        if change.device_id is not None:
            names.device_id(change.device_id)
        if change.num_id is not None:
            names.num_id(change.num_id)
        return change
