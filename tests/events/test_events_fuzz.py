"""Fuzz the event decoder: 10,000 generated inputs in four strategies; whatever the input, the
decoder returns a DeviceChange or raises EventError, never anything else.

Mutations of the captured envelopes are driven by a hypothesis-drawn seed and replacement
value (drawing every step through hypothesis would make the run several times slower).
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from events_support import all_envelopes, ce_attributes, entry, pubsub_message, push_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.errors import EventError
from bridge.events import (
    DeviceChange,
    decode,
    decode_background,
    decode_cloudevent,
    decode_log_entry,
    decode_push,
)

FUZZ = settings(max_examples=2500, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
NASTY: list[Any] = [None, True, 0, -1, 2**70, 1.5, float("nan"), "", "0", "2945293131701148",
                    "a/b", "../x", "x" * 5000, "%%%", "e30=", "W10=", [], {}, [[[]]],
                    {"paths": ["blocked"]}, {"code": 3}, "google.cloud.iot.v1.DeviceManager."
                    "DeleteDevice", "projects/p/locations/l/registries/r/devices/12"]
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) \
    | st.sampled_from([v for v in NASTY if not isinstance(v, list | dict)])
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=3),
                           max_leaves=8)
ENVELOPES = sorted(all_envelopes())
ENTRY = entry()


def outcome(fn: Any, *args: Any) -> None:
    try:
        result = fn(*args)
    except EventError as exc:
        assert str(exc)
    else:
        assert isinstance(result, DeviceChange)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(paths(value, (*prefix, i)))
    return out


def mutate(rng: random.Random, doc: dict[str, Any], drawn: Any) -> dict[str, Any]:
    """One to three edits: delete a key, or replace a node by a nasty or drawn value."""
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        where = paths(doc)
        if not where:
            break
        path = rng.choice(where)
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        choice = rng.random()
        if isinstance(parent, dict) and choice < 0.3:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(drawn if choice < 0.6 else rng.choice(NASTY))
    return doc


@FUZZ
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    outcome(decode, value)
    outcome(decode_log_entry, value)


@FUZZ
@given(st.binary(max_size=120) | st.text(max_size=120) | json_values.map(json.dumps))
def test_arbitrary_text_and_bytes(raw: bytes | str) -> None:
    outcome(decode, raw)
    outcome(decode_push, raw)


@FUZZ
@given(st.integers(0, 2**32), json_values)
def test_mutated_fixture_envelopes(seed: int, drawn: Any) -> None:
    rng = random.Random(seed)
    name = rng.choice(ENVELOPES)
    if rng.random() < 0.5:
        envelope = all_envelopes(mutate(rng, ENTRY, drawn))[name]  # edits inside the base64
    else:
        envelope = mutate(rng, all_envelopes(ENTRY)[name], drawn)
    outcome(decode, envelope)
    outcome(decode, json.dumps(envelope))


@FUZZ
@given(st.integers(0, 2**32), json_values)
def test_mutated_inputs_to_each_decoder(seed: int, drawn: Any) -> None:
    rng = random.Random(seed)
    log = mutate(rng, ENTRY, drawn)
    attributes = rng.choice([ce_attributes(), ce_attributes("google.cloud.audit.log.v1.written"),
                             {"type": drawn}, drawn])
    outcome(decode_cloudevent, attributes, rng.choice([push_body(log), log, json.dumps(log),
                                                       drawn]))
    outcome(decode_background, mutate(rng, pubsub_message(log), drawn), drawn)
    outcome(decode_push, mutate(rng, push_body(log), drawn))
