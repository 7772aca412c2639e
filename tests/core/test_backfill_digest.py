"""The identity digest is Mender's identity hash whatever the identity holds: the plain case
written directly (bridge.identity.plain_json) gives the same bytes as the Go-compatible
canonical JSON (hypothesis, and the characters Go escapes); the index keeps its prefix."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.backfill.index import DIGEST_BYTES, MenderIndex, digest_of
from bridge.identity import canonical_json, identity_digest
from bridge.model import AuthSet, AuthStatus, MenderDevice

PLAIN = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
ANY = st.text(max_size=12)  # with surrogates, controls and non-ASCII
VALUES = st.one_of(ANY, PLAIN, st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                   st.none(), st.booleans(), st.lists(PLAIN, max_size=2))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.one_of(PLAIN, ANY), st.one_of(PLAIN, PLAIN, VALUES), max_size=4))
def test_the_digest_is_mender_s_identity_hash(identity: dict[str, object]) -> None:
    general = hashlib.sha256(canonical_json(identity).encode("utf-8")).digest()
    assert identity_digest(identity) == general
    assert digest_of(identity) == general[:DIGEST_BYTES]


@pytest.mark.parametrize("value", ['a"b', "a\\b", "a<b", "a>b", "a&b", "a\u2028b", "a\tb",
                                   "caf\u00e9", "a\ud800b", "a\x7fb", "", "Zz~ !#%'()[]^`{|}"])
def test_characters_go_escapes_or_reads_differently_give_mender_s_hash(value: str) -> None:
    identity = {"google_iot_id": value, "Registry": "r-1"}
    general = hashlib.sha256(canonical_json(identity).encode("utf-8")).digest()
    assert identity_digest(identity) == general


def test_the_plain_case_is_go_s_json_of_the_sorted_keys() -> None:
    # Written out by hand from Go's json.Marshal of map[string]interface{}: keys sorted.
    text = b'{"B":"2","a":"dev-1","z_":"x y"}'
    assert identity_digest({"z_": "x y", "a": "dev-1", "B": "2"}) == hashlib.sha256(text).digest()


@pytest.mark.parametrize("identity", [
    {"google_iot_id": "dev-1"}, {"a": "1", "b": "2"}, {"b": "2", "a": "1"},
    {"google_iot_id": "caf\u00e9 <&>"}, {"n": "x", "m": "\\\""}])
def test_a_device_claimed_from_the_index_is_the_device_added(identity: dict[str, str]) -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    added = MenderDevice("m1", dict(identity), AuthStatus.ACCEPTED, False,
                         (AuthSet("a1", pem, AuthStatus.ACCEPTED),))
    index = MenderIndex(lambda found: set(found) == set(identity))
    index.add(added)
    claimed = index.claim(identity_digest(identity), lambda: [pem])
    assert claimed == added and list(claimed.identity_data) == list(identity)
