"""The Google adapter maps every failure of the client into the error tree, including error
bodies that are not Google's (a proxy or load balancer in front of the API)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, Response
from registry_support import LOCATION, PROJECT, REGISTRY

from bridge.errors import ApiError, NotFound, TransientApiError
from bridge.model import RegistryRef
from bridge.registry.google import GoogleRegistry
from bridge.sandbox.server import serve

REF = RegistryRef(PROJECT, LOCATION, REGISTRY)
ANSWERS = {
    "proxy-json": (502, '{"error": "bad gateway"}', "application/json"),
    "proxy-html": (503, "<html><body>upstream down</body></html>", "text/html"),
    "google-404": (404, '{"error": {"code": 404, "message": "no device", "status": '
                        '"NOT_FOUND"}}', "application/json"),
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
    ("google-404", NotFound)])
def test_error_bodies_of_any_shape_become_api_errors(
        proxy: str, device: str, error: type[ApiError]) -> None:
    registry = GoogleRegistry(endpoint=proxy, credentials="anonymous", timeout=5.0,
                              retry_deadline=0.5)
    with pytest.raises(error) as caught:
        registry.get_device(REF, device)
    assert caught.value.service == "registry"
    assert REF.path in caught.value.path
