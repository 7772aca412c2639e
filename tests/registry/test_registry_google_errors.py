"""The Google adapter maps every failure of the client into the error tree, including error
bodies that are not Google's (a proxy or load balancer in front of the API) and answers that
are not devices, with short messages free of the client's internal query string."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, Response
from registry_support import LOCATION, PROJECT, REGISTRY, Sandbox

from bridge.errors import ApiError, NotFound, PermanentApiError, TransientApiError
from bridge.model import RegistryRef
from bridge.registry.google import GoogleRegistry
from bridge.sandbox.server import serve

REF = RegistryRef(PROJECT, LOCATION, REGISTRY)
ANSWERS = {
    "proxy-json": (502, '{"error": "bad gateway"}', "application/json"),
    "proxy-html": (503, "<html><body>upstream down</body></html>", "text/html"),
    "google-404": (404, '{"error": {"code": 404, "message": "no device", "status": '
                        '"NOT_FOUND"}}', "application/json"),
    # JSON that google-api-core would trip over (it calls .get on whatever it finds).
    "proxy-list": (503, '["busy"]', "application/json"),
    "odd-details": (400, '{"error": {"message": "bad", "details": 5}}', "application/json"),
    "odd-error": (400, '{"error": ["bad"]}', "application/json"),
    # A success that is not a device (a captive portal, a misrouted endpoint).
    "html-200": (200, "<html><body>sign in</body></html>", "text/html"),
    "list-200": (200, '["dev"]', "application/json"),
}


@pytest.fixture
def proxy() -> Iterator[str]:
    app = Flask("proxy")

    @app.route("/v1/<path:rest>")
    def answer(rest: str) -> Response:
        status, body, kind = ANSWERS[rest.rsplit("/", 1)[-1]]
        return Response(body, status=status, content_type=kind)

    server = serve(app)
    yield server.url
    server.stop()


@pytest.mark.parametrize(("device", "error"), [
    ("proxy-json", TransientApiError), ("proxy-html", TransientApiError),
    ("google-404", NotFound), ("proxy-list", TransientApiError),
    ("odd-details", PermanentApiError), ("odd-error", PermanentApiError),
    ("html-200", TransientApiError), ("list-200", TransientApiError)])
def test_error_bodies_of_any_shape_become_api_errors(
        proxy: str, device: str, error: type[ApiError]) -> None:
    registry = GoogleRegistry(endpoint=proxy, credentials="anonymous", timeout=5.0,
                              retry_deadline=0.5)
    with pytest.raises(error) as caught:
        registry.get_device(REF, device)
    assert caught.value.service == "registry"
    assert REF.path in caught.value.path


def test_an_unknown_registry_is_a_short_error_without_the_query_string(
        sandbox: Sandbox) -> None:
    with (GoogleRegistry(endpoint=sandbox.url, credentials="anonymous", timeout=5.0) as registry,
          pytest.raises(NotFound) as caught):
        list(registry.iter_devices(RegistryRef(PROJECT, LOCATION, "nope-reg")))
    text = str(caught.value)
    assert "nope-reg" in text and len(text) < 250
    assert not any(part in text for part in ("?", "alt=", "fieldMask", "pageSize", "http"))
