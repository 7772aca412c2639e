"""Fuzz the event decoder: 10,000 generated inputs in four strategies; whatever the input, the
decoder returns a DeviceChange or raises EventError, never anything else."""

from __future__ import annotations

import copy
import json
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

FUZZ = settings(max_examples=2500, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text(max_size=30) | st.sampled_from(
               ["", "0", "2945293131701148", "custodian", "projects/p/locations/l/registries/r",
                "google.cloud.iot.v1.DeviceManager.UpdateDevice", "blocked,credentials",
                "google.cloud.pubsub.topic.v1.messagePublished", "e30=", "W10=", "%%%"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=20)
ENVELOPES = sorted(all_envelopes())


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


def mutate(data: st.DataObject, doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(doc)))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
        if not paths(doc):
            break
    return doc


@FUZZ
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    outcome(decode, value)
    outcome(decode_log_entry, value)


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200) | json_values.map(json.dumps))
def test_arbitrary_text_and_bytes(raw: bytes | str) -> None:
    outcome(decode, raw)
    outcome(decode_push, raw)


@FUZZ
@given(st.data())
def test_mutated_fixture_envelopes(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(ENVELOPES))
    if data.draw(st.booleans()):
        envelope = all_envelopes(mutate(data, entry()))[name]  # mutate inside the base64
    else:
        envelope = mutate(data, all_envelopes()[name])
    outcome(decode, envelope)
    outcome(decode, json.dumps(envelope))


@FUZZ
@given(st.data())
def test_mutated_inputs_to_each_decoder(data: st.DataObject) -> None:
    log = mutate(data, entry())
    attributes = data.draw(st.sampled_from([
        ce_attributes(), ce_attributes("google.cloud.audit.log.v1.written")]) | json_values)
    outcome(decode_cloudevent, attributes, data.draw(st.sampled_from(
        [push_body(log), log, json.dumps(log)]) | json_values))
    outcome(decode_background, mutate(data, pubsub_message(log)), data.draw(json_values))
    outcome(decode_push, mutate(data, push_body(log)))
