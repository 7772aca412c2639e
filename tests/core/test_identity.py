"""Identity templates, and the canonical JSON and hash Mender computes (Go's encoding/json)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import IdentityError
from bridge.identity import DEFAULT_TEMPLATE, IdentityTemplate, canonical_json, identity_hash
from bridge.model import RegistryDevice, RegistryRef

REF = RegistryRef("my-project", "europe-west1", "fleet")
DEVICE = RegistryDevice(REF, "g-abc", "2820826361193805", metadata={"serial": "SN-1", "hw": "v2"})


@pytest.mark.parametrize(("template", "expected"), [
    (DEFAULT_TEMPLATE, {"google_iot_id": "g-abc"}),
    ("id={device.num_id}", {"id": "2820826361193805"}),
    ("google_iot_id={device.id}, serial={metadata[serial]}",
     {"google_iot_id": "g-abc", "serial": "SN-1"}),
    ("path=projects/{project}/locations/{location}/registries/{registry}/devices/{device.id}",
     {"path": "projects/my-project/locations/europe-west1/registries/fleet/devices/g-abc"}),
    (" mac = {metadata[hw]}-{device.id} ", {"mac": "v2-g-abc"}),
    ("kind=gateway", {"kind": "gateway"}),
])
def test_render(template: str, expected: dict[str, str]) -> None:
    parsed = IdentityTemplate.parse(template)
    assert parsed.render(DEVICE) == expected
    assert parsed.names == frozenset(expected)
    assert parsed.follows(expected)
    assert parsed.reads_metadata == ("metadata[" in template)


def test_rendered_values_are_not_substituted_again() -> None:
    device = RegistryDevice(REF, "{device.num_id}", "7", metadata={"m": "{registry}"})
    rendered = IdentityTemplate.parse("a={device.id},b={metadata[m]}").render(device)
    assert rendered == {"a": "{device.num_id}", "b": "{registry}"}


@pytest.mark.parametrize(("template", "message"), [
    ("google_iot_id={device.name}", "unknown identity field {device.name}"),
    ("id={devices.id}", "unknown identity field"),
    ("id={metadata[]}", "needs a metadata key"),
    ("id={metadata[1st]}", "needs a metadata key"),
    ("id={metadata}", "unknown identity field {metadata}"),
    ("id={device.id", "unbalanced braces"),
    ("id=device.id}", "unbalanced braces"),
    ("id={{device.id}}", "unbalanced braces"),
    ("google_iot_id", "not of the form name={field}"),
    ("={device.id}", "not of the form"),
    ("", "not of the form"),
    ("a={device.id},", "not of the form"),
    ("bad name={device.id}", "not of the form"),
    ("a={device.id},a={device.num_id}", "appears twice"),
    ("status={device.id}", "reserved"),
    ("a=", "empty value"),
])
def test_parse_errors_are_clear(template: str, message: str) -> None:
    with pytest.raises(IdentityError, match=message.replace("{", r"\{").replace("[", r"\[")):
        IdentityTemplate.parse(template)


def test_missing_metadata_key_at_render() -> None:
    template = IdentityTemplate.parse("serial={metadata[serial]}")
    with pytest.raises(IdentityError, match="fleet/g-abc has no metadata key 'serial'"):
        template.render(RegistryDevice(REF, "g-abc", "1"))


def test_follows_needs_exactly_the_attributes_as_strings() -> None:
    template = IdentityTemplate.parse(DEFAULT_TEMPLATE)
    assert not template.follows({"google_iot_id": "g", "mac": "x"})
    assert not template.follows({"mac": "x"})
    assert not template.follows({"google_iot_id": 1})


# Expected strings written by hand from Go's encoding/json rules (Go >= 1.22), not by the code.
GO_VECTORS: list[tuple[object, str]] = [
    ({"google_iot_id": "g-abc"}, '{"google_iot_id":"g-abc"}'),
    ({"b": "1", "a": "x<y>&z"}, '{"a":"x\\u003cy\\u003e\\u0026z","b":"1"}'),
    ({"k": "\u2028\u2029"}, '{"k":"\\u2028\\u2029"}'),
    ({"k": "é😀"}, '{"k":"é😀"}'),
    ({"k": "\x00\x1f\b\f\n\r\t\"\\\x7f/"}, '{"k":"\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\\x7f/"}'),
    ({"k": "\ud800x"}, '{"k":"\ufffdx"}'),  # lone surrogate: Go's decoder makes it U+FFFD
    ({"k": "\ud83d\ude00"}, '{"k":"😀"}'),  # a surrogate pair arrives as one character
    ({"z": "", "é": "", "_": "", "B": "", "b": ""}, '{"B":"","_":"","b":"","z":"","é":""}'),
    ({"\U00010000": "", "\ue000": ""}, '{"\ue000":"","\U00010000":""}'),  # UTF-8 byte order
    ({"b": {"d": [1, "x"], "c": None}, "a": True, "e": False},
     '{"a":true,"b":{"c":null,"d":[1,"x"]},"e":false}'),
    ({"n": [1.0, 1, -0.0, 0, 0.000001, 1e-7, 1.5e-10, 1e20, 1e21, 123456789.125, 2**53 + 1,
            5e-324, 1.7976931348623157e308, -2.5e-8, 0.1, 100]},
     '{"n":[1,1,-0,0,0.000001,1e-7,1.5e-10,100000000000000000000,1e+21,123456789.125,'
     '9007199254740992,5e-324,1.7976931348623157e+308,-2.5e-8,0.1,100]}'),
    ({2: "int key", None: "null key", True: "bool key", 0.5: "float key"},
     '{"0.5":"float key","2":"int key","null":"null key","true":"bool key"}'),
    ({}, "{}"),
]


@pytest.mark.parametrize(("identity", "expected"), GO_VECTORS)
def test_go_canonical_json_vectors(identity: dict[object, object], expected: str) -> None:
    assert canonical_json(identity) == expected
    assert identity_hash(identity) == hashlib.sha256(expected.encode()).hexdigest()  # type: ignore[arg-type]


def test_known_identity_hash() -> None:
    literal = '{"google_iot_id":"g-abc"}'
    assert identity_hash({"google_iot_id": "g-abc"}) == hashlib.sha256(literal.encode()).hexdigest()
    # printf %s '{"google_iot_id":"g-abc"}' | sha256sum
    assert identity_hash({"google_iot_id": "g-abc"}) == (
        "e3eb7bf7769bcf9d18463a192ef40d8fa4e46e36cdf1791d0ef82528cf7a1984"
    )


@pytest.mark.parametrize("bad", [
    {"n": float("nan")}, {"n": float("inf")}, {"n": 10**400}, {"b": b"bytes"}, {"s": {1, 2}},
    {(1, 2): "tuple key"}, {float("nan"): "x"},
])
def test_values_go_cannot_hold_raise_identity_error(bad: dict[object, object]) -> None:
    with pytest.raises(IdentityError):
        canonical_json(bad)


def test_keys_colliding_after_conversion_keep_the_last_value_as_go_does() -> None:
    assert canonical_json({1: "first", "1": "second"}) == '{"1":"second"}'
    assert canonical_json({chr(0xD800): "a", chr(0xDFFF): "b"}) == '{"\ufffd":"b"}'


def go_encode_string(text: str) -> str:
    """An independent, character-by-character transcription of Go's encodeState.string."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ord(ch) < 0x20 or ch in "<>&":
            out.append(f"\\u00{ord(ch):02x}")
        elif ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def go_encode_identity(identity: dict[str, str]) -> str:
    ordered = sorted(identity.items(), key=lambda kv: kv[0].encode("utf-8"))
    return "{" + ",".join(f"{go_encode_string(k)}:{go_encode_string(v)}" for k, v in ordered) + "}"


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
IDENTITIES = st.dictionaries(TEXT, TEXT, max_size=8)
SURROGATE_TEXT = st.text(st.one_of(st.characters(categories=["Cs"]), st.characters()), max_size=6)


@settings(max_examples=400, deadline=None)
@given(identity=IDENTITIES, seed=st.randoms(use_true_random=False))
def test_canonical_json_properties(identity: dict[str, str], seed: object) -> None:
    text = canonical_json(identity)
    items = list(identity.items())
    seed.shuffle(items)  # type: ignore[attr-defined]
    assert canonical_json(dict(items)) == text
    assert json.loads(text) == identity
    assert text == go_encode_identity(identity)
    assert identity_hash(dict(items)) == hashlib.sha256(text.encode("utf-8")).hexdigest()


@settings(max_examples=200, deadline=None)
@given(identity=st.dictionaries(SURROGATE_TEXT, SURROGATE_TEXT, max_size=5))
def test_any_python_string_hashes_as_go_decodes_it(identity: dict[str, str]) -> None:
    """Surrogates included: Go hashes what it decodes from the ASCII-safe JSON Python sends."""
    decoded = {fix(k): fix(v) for k, v in json.loads(json.dumps(identity)).items()}
    assert canonical_json(identity) == go_encode_identity(decoded)


def fix(text: str) -> str:
    """Go's decoder: join valid surrogate pairs, replace lone surrogates with U+FFFD."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if "\ud800" <= ch <= "\udbff" and "\udc00" <= nxt <= "\udfff":
            out.append(chr(0x10000 + ((ord(ch) - 0xD800) << 10) + (ord(nxt) - 0xDC00)))
            i += 2
            continue
        out.append("\ufffd" if "\ud800" <= ch <= "\udfff" else ch)
        i += 1
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(device_id=st.text(min_size=1, max_size=20), serial=st.text(max_size=20))
def test_rendering_copies_values_verbatim(device_id: str, serial: str) -> None:
    device = RegistryDevice(REF, device_id, "1", metadata={"serial": serial})
    template = IdentityTemplate.parse("google_iot_id={device.id},serial=s-{metadata[serial]}")
    rendered = template.render(device)
    assert rendered == {"google_iot_id": device_id, "serial": f"s-{serial}"}
    assert template.follows(rendered)


FIXED = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")
EXPONENT = re.compile(r"-?[1-9](\.[0-9]*[1-9])?e[-+][1-9][0-9]*")


@settings(max_examples=500, deadline=None)
@given(number=st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                        st.integers(-(2**63), 2**63)))
def test_numbers_follow_gos_float64_format(number: float) -> None:
    text = canonical_json({"n": number})[5:-1]
    value = float(number)
    assert float(text) == value
    if value != 0 and not 1e-6 <= abs(value) < 1e21:
        assert EXPONENT.fullmatch(text), text
    else:
        assert FIXED.fullmatch(text) or text == "-0", text
    digits = text.lstrip("-").split("e")[0].replace(".", "").strip("0")
    assert len(digits) <= len(repr(value).lstrip("-").split("e")[0].replace(".", "").strip("0"))
