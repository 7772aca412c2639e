"""`mender-bridge demo`: the whole product on the local sandbox, with real HTTP everywhere."""

from __future__ import annotations

from pathlib import Path

from bridge.demo.narrate import Narrator, Row, table
from bridge.demo.story import Story
from bridge.demo.world import World

__all__ = ["Narrator", "Row", "World", "run", "table"]


def run(data_dir: Path, fleet_size: int, narrator: Narrator, world: World | None = None
        ) -> list[Row]:
    """Play the story on a started world (or a new one in data_dir) and return the table."""
    own = world is None
    world = world or World(data_dir).start()
    try:
        return Story(world, narrator, fleet_size).play()
    finally:
        if own:
            world.stop()
