"""docs/mender-api.md#checklist, point by point: which tests show each fidelity point of the
stand-in (checked to exist), and the tests for the parts no other module covers.

Not covered, on purpose: "per tenant" (point 2) — the sandbox has a single tenant.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from sbm_support import DEVAUTH, Mender, new_key, public_pem, unique_identity

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
CHECKLIST: dict[int, list[str]] = {
    # 201 + relative Location, empty body; 409 = the Device with auth_sets null.
    1: ["test_sbm_preauth.py::test_preauthorize_answers_201_with_a_relative_location_and_no_body",
        "test_sbm_preauth.py::test_same_identity_conflicts_with_the_device_as_body"],
    # Conflict on the Go-canonical identity hash; force upserts a preauthorized set, 201.
    2: ["test_sbm_conventions.py::test_equal_identities_in_other_spellings_conflict",
        "test_sbm_conventions.py::test_canonical_json_sorts_keys_and_escapes_like_go",
        "test_sbm_preauth.py::test_force_adds_a_preauthorized_set_and_names_a_fresh_id",
        "test_sbm_preauth.py::test_force_flips_a_pending_set_but_leaves_the_device_status"],
    # PKIX PEM normalized to 64 columns; `RSA PUBLIC KEY` refused with 400.
    3: ["test_sbm_preauth.py::test_pubkey_is_stored_normalized",
        "test_sbm_preauth.py::test_pkcs1_rsa_public_key_is_refused"],
    # {"error", "request_id"} bodies; X-MEN-RequestID echoed or generated.
    4: ["test_sbm_conventions.py::test_request_id_is_echoed_or_generated",
        "test_sbm_preauth.py::test_bad_preauthorize_requests_get_400_with_deviceauths_message"],
    # Paging: default 20, max 500, Link first/prev/next, order (status, id).
    5: ["test_sbm_checklist.py::test_default_page_is_20_devices",
        "test_sbm_manage.py::test_list_pages_in_status_then_id_order_with_links",
        "test_sbm_manage.py::test_bad_list_parameters_are_400"],
    # AuthSet without device_id; Device always has decommissioning.
    6: ["test_sbm_preauth.py::test_preauthorize_answers_201_with_a_relative_location_and_no_body",
        "test_sbm_checklist.py::test_every_device_listing_has_decommissioning"],
    # PUT status refuses preauthorized (400); 422 at the limit; DELETE 404s empty-bodied.
    7: ["test_sbm_manage.py::test_status_transitions",
        "test_sbm_manage.py::test_device_limit",
        "test_sbm_manage.py::test_unknown_deletes_are_404_with_an_empty_body"],
    # Signature over the raw body; a preauthorized key gets a JWT on its first request.
    8: ["test_sbm_device_auth.py::test_preauthorized_key_gets_a_device_jwt_on_the_first_request",
        "test_sbm_device_auth.py::test_signature_over_other_bytes_fails_even_with_the_right_key",
        "test_sbm_real_clients.py::test_preauthorized_device_is_accepted_on_its_first_request"],
    # 429 + Retry-After, 413 above 1 MiB, 401 + WWW-Authenticate.
    9: ["test_sbm_checklist.py::test_throttled_answer_is_429_with_retry_after_and_error_body",
        "test_sbm_ratelimit.py::test_fixed_window_answers_429_right_after_the_quota",
        "test_sbm_conventions.py::test_bodies_above_one_mebibyte_are_413",
        "test_sbm_useradm.py::test_management_calls_need_a_valid_bearer_token"],
}


def test_every_checklist_point_names_existing_tests() -> None:
    assert sorted(CHECKLIST) == list(range(1, 10))
    for point, tests in CHECKLIST.items():
        for test in tests:
            module, name = test.split("::")
            source = (HERE / module).read_text(encoding="utf-8")
            assert f"\ndef {name}(" in source, f"checklist point {point}: {test} is missing"


def test_default_page_is_20_devices(fresh: Mender) -> None:
    for _ in range(21):
        assert fresh.preauthorize(unique_identity(), public_pem(new_key())).status_code == 201
    first = fresh.call("GET", f"{DEVAUTH}/devices")
    assert len(first.json()) == 20
    links = {link["rel"]: link["url"]
             for link in requests.utils.parse_header_links(first.headers["Link"])}
    assert set(links) == {"first", "next"}
    assert "per_page=20" in links["next"] and "page=2" in links["next"]
    rest = fresh.call("GET", links["next"]).json()
    assert len(rest) == 1
    assert rest[0]["id"] not in {d["id"] for d in first.json()}
    largest = fresh.call("GET", f"{DEVAUTH}/devices", params={"per_page": 500})
    assert len(largest.json()) == 21


def test_every_device_listing_has_decommissioning(mender: Mender) -> None:
    mender.preauthorize(unique_identity(), public_pem(new_key()))
    listed = mender.call("GET", f"{DEVAUTH}/devices", params={"per_page": 500}).json()
    searched = mender.call("POST", f"{DEVAUTH}/devices/search", json={}).json()
    assert listed and searched
    for device in [*listed, *searched]:
        assert device["decommissioning"] is False
        assert all("device_id" not in auth for auth in device["auth_sets"])


def test_throttled_answer_is_429_with_retry_after_and_error_body(fresh: Mender) -> None:
    fresh.faults.update({"rate_429": 1.0, "retry_after": 7})
    try:
        response = fresh.call("GET", f"{DEVAUTH}/devices", headers={"X-MEN-RequestID": "rq-9"})
    finally:
        fresh.faults.update({"rate_429": 0.0})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"error": "too many requests", "request_id": "rq-9"}
    assert fresh.call("GET", f"{DEVAUTH}/devices").status_code == 200
