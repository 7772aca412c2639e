"""Register a device in a running sandbox registry from a public key or certificate file,
through the Cloud IoT v1 REST call (what `mender-bridge sandbox add-device` does)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

MAX_KEY_BYTES = 64 * 1024


class EnrollError(Exception):
    """The device could not be registered; the message is one line."""


def credential_format(pem: str) -> str:
    """Cloud IoT's format name for a PEM public key or certificate (RSA or P-256)."""
    try:
        if "BEGIN CERTIFICATE" in pem:
            key: Any = x509.load_pem_x509_certificate(pem.encode()).public_key()
            suffix = "_X509_PEM"
        else:
            key = serialization.load_pem_public_key(pem.encode())
            suffix = "_PEM"
    except ValueError:
        raise EnrollError("the key file holds no PEM public key or certificate") from None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA" + suffix
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return "ES256" + suffix
    raise EnrollError("the key is neither RSA nor EC P-256 (what Cloud IoT accepts)")


def add_device(config: Path, device_id: str, key_file: Path) -> dict[str, Any]:
    """Create `device_id` with the key of `key_file` in the first registry of the sandbox's
    bridge.toml; returns the created Device (REST JSON)."""
    try:
        settings = tomllib.loads(config.read_text(encoding="utf-8"))
        pem = key_file.read_bytes()[:MAX_KEY_BYTES].decode("ascii")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EnrollError(f"cannot read {exc.filename if isinstance(exc, OSError) else 'it'}:"
                          f" {getattr(exc, 'strerror', None) or exc}") from None
    try:
        base, project = settings["iot_endpoint"], settings["iot_project"]
        location, registry = settings["iot_location"], settings["iot_registries"][0]
    except (KeyError, IndexError, TypeError):
        raise EnrollError(f"{config} is not a sandbox's bridge.toml") from None
    body = {"id": device_id, "credentials": [
        {"publicKey": {"format": credential_format(pem), "key": pem}}]}
    url = (f"{base}/v1/projects/{quote(project, safe='')}/locations/"
           f"{quote(location, safe='')}/registries/{quote(registry, safe='')}/devices")
    try:
        answer = requests.post(url, json=body, timeout=10)
    except requests.RequestException as exc:
        raise EnrollError(f"the sandbox registry at {base} does not answer "
                          f"({type(exc).__name__}): is the sandbox running?") from None
    if answer.status_code != 200:
        try:
            message = str(answer.json()["error"]["message"])[:200]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {answer.status_code}"
        raise EnrollError(f"the registry refused device {device_id[:80]!r}: {message}")
    created: dict[str, Any] = answer.json()
    return created
