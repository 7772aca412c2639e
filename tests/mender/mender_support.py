"""Test support for the Mender client: the OpenAPI contract check of every exchange, a scripted
loopback server for real connection faults (drops, hangs, TLS), and a clock for the pacer that
moves only when it is slept on."""

from __future__ import annotations

import functools
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import requests
import yaml
from mender_bodies import BASE
from werkzeug.datastructures import Headers

from tests.fixtures import SHARED, shared_file

# Mender's specs, where a copy sits beside the checkout (docs/mender-api.md#specs).
SPEC_DIR = SHARED / "mender-openapi"
UNCHECKED = "the Mender client's exchanges not checked against Mender's OpenAPI spec"


def load_openapi() -> Any:
    spec = shared_file("mender-openapi/mender-server-dist-openapi.yaml", UNCHECKED)
    if spec is None:
        return None
    from openapi_core import Config, OpenAPI

    # docs/mender-api.md#login: the login answer is a raw JWT (application/jwt), a string.
    config = Config(extra_media_type_deserializers={"application/jwt": _text})
    return OpenAPI.from_file_path(str(spec), config=config)


def _text(data: bytes, **_: Any) -> str:
    return data.decode("utf-8")


@dataclass
class FakeClock:
    """Time that passes only by `sleep` (or `advance`), which records what was slept."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass
class _Answer:
    """An answer as openapi-core reads it, so a body can be adjusted before validation."""

    data: bytes
    status_code: int
    content_type: str
    headers: Headers


@dataclass
class Contract:
    """Validates each request and answer against the bundled spec (the facts win, §13)."""

    openapi: Any
    exempt_reason: str | None = None
    checked: list[str] = field(default_factory=list)

    def exempt(self, reason: str) -> None:
        """This test feeds bodies that are wrong on purpose; do not validate its exchanges."""
        self.exempt_reason = reason

    def check(self, request: requests.PreparedRequest, response: object) -> None:
        from openapi_core.contrib.requests import RequestsOpenAPIRequest
        from openapi_core.templating.responses.exceptions import ResponseNotFound

        if self.openapi is None or not str(request.url).startswith(BASE + "/"):
            return
        oreq = RequestsOpenAPIRequest(request)
        self.openapi.validate_request(oreq)
        self.checked.append(f"{request.method} {request.path_url}")
        if not isinstance(response, requests.Response):
            return  # a dropped connection or timeout: no answer to validate
        status, content = response.status_code, response.content
        if status == 404 and not content:
            return  # docs/mender-api.md#errors: DELETE 404s are empty-bodied (spec: a body)
        body = json.loads(content) if content and _is_json(response) else None
        if status == 409 and isinstance(body, dict) and body.get("auth_sets", 0) is None:
            # docs/mender-api.md#preauthorize: the 409 Device has `auth_sets: null` (spec: array).
            content = json.dumps({k: v for k, v in body.items() if k != "auth_sets"}).encode()
        answer = _Answer(content, status, response.headers.get("Content-Type", ""),
                         Headers(dict(response.headers)))
        try:
            self.openapi.validate_response(oreq, answer)
        except ResponseNotFound:
            # docs/mender-api.md#errors: 401/413/415/429/503… are not listed for every operation,
            # but all carry the common Error body.
            jsonschema.validate(body, error_schema())


def _is_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "")


@functools.cache
def error_schema() -> dict[str, Any]:
    """The common Error schema; read when first needed, so a missing spec fails a test, not
    the import of this module."""
    path = shared_file("mender-openapi/common-schemas.yaml", UNCHECKED)
    if path is None:
        return {}
    schema: dict[str, Any] = yaml.safe_load(path.read_text())["components"]["schemas"]["Error"]
    return schema



class ScriptedServer:
    """Loopback server answering connection after connection from a script: "drop" closes the
    connection unanswered, "hang" answers nothing, bytes are sent as the raw answer."""

    def __init__(self, script: list[str | bytes], tls: ssl.SSLContext | None = None) -> None:
        self.script = list(script)
        self.requests: list[bytes] = []
        self._tls = tls
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}" if self._tls else f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            if self._tls:
                conn = self._tls.wrap_socket(conn, server_side=True)
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            data += self._rest_of_body(conn, data)
            self.requests.append(data)
            action = self.script.pop(0) if self.script else "drop"
            if action == "hang":
                self._stop.wait(5)
            elif isinstance(action, bytes):
                conn.sendall(action)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    @staticmethod
    def _rest_of_body(conn: socket.socket, data: bytes) -> bytes:
        """The body bytes still on the wire (urllib3 may send the body apart from the head)."""
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                       if line.lower().startswith(b"content-length:")), 0)
        rest = b""
        while len(body) + len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        return rest

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


def http_answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"HTTP/1.1 {status} X", "Connection: close", f"Content-Length: {len(payload)}",
             "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def self_signed(tmp: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for localhost/127.0.0.1 and the path of its certificate (the CA)."""
    from bridge.sandbox.mender.crypto import ensure_tls_certificate

    cert_path, key_path = ensure_tls_certificate(tmp)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path
