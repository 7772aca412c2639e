"""Device key kit in Python: the key pair, certificate and id that `keys/provision-device.sh`
makes, and the Cloud IoT device JWT signed with that same key.

Used by `mender-bridge keys generate|jwt|check` and by `bridge.device.SimulatedDevice`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from bridge.errors import BridgeError, InvalidKeyError, NotFound
from bridge.identity import IdentityTemplate, canonical_json
from bridge.keys import DEFAULT_POLICY, KeyPolicy, normalize
from bridge.model import AuthStatus, CredentialFormat, PublicKey, RegistryDevice, RegistryRef
from bridge.ports import Mender, Registry

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
KeyKind = Literal["ec", "rsa"]

KEY_NAME = "mender-agent.pem"
PUBLIC_NAME = "device-public.pem"
CERT_NAME = "device-cert.pem"
ID_NAME = "device-id"
DEVICE_ID_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9\-_.+~%]{2,254}")
MAX_JWT_TTL = 86400  # Cloud IoT refuses a device JWT living longer than 24 h
RSA_BITS = 3072
CERT_DAYS = 3650
MAX_KEY_FILE = 64 * 1024


@dataclass(frozen=True)
class Kit:
    """Where one generated kit was written, and what to register."""

    device_id: str
    key_path: Path
    public_path: Path
    cert_path: Path
    id_path: Path
    cert_format: CredentialFormat
    public_format: CredentialFormat


def validate_device_id(device_id: str) -> str:
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise InvalidKeyError(
            f"invalid device id {device_id!r}: Cloud IoT needs [a-zA-Z][a-zA-Z0-9-_.+~%]{{2,254}}"
        )
    return device_id


def default_device_id(machine_id_file: Path = Path("/etc/machine-id")) -> str:
    """`g-<machine-id>`, the meta-gcp-iot layer's convention."""
    try:
        machine_id = "".join(machine_id_file.read_text(encoding="ascii").split())
    except (OSError, UnicodeDecodeError):
        raise InvalidKeyError(
            f"cannot read {machine_id_file} to make the default device id; give --device-id"
        ) from None
    if not machine_id:
        raise InvalidKeyError(f"{machine_id_file} is empty; give --device-id")
    return validate_device_id(f"g-{machine_id}")


def generate_key(kind: KeyKind = "ec") -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def private_pem(key: PrivateKey) -> bytes:
    """SEC1 for EC and PKCS#1 for RSA (the forms the Mender client reads); PKCS#8 for Ed25519."""
    fmt = (serialization.PrivateFormat.PKCS8 if isinstance(key, ed25519.Ed25519PrivateKey)
           else serialization.PrivateFormat.TraditionalOpenSSL)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def public_pem(key: PrivateKey) -> str:
    """PKIX `PUBLIC KEY` PEM: what Mender stores and what ES256_PEM / RSA_PEM register."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def formats(key: PrivateKey) -> tuple[CredentialFormat, CredentialFormat]:
    """(certificate format, bare public key format) to register this key with."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return CredentialFormat.ES256_X509_PEM, CredentialFormat.ES256_PEM
    if isinstance(key, rsa.RSAPrivateKey):
        return CredentialFormat.RSA_X509_PEM, CredentialFormat.RSA_PEM
    raise InvalidKeyError("Cloud IoT registers only EC P-256 and RSA keys")


def certificate(key: PrivateKey, device_id: str, *, days: int = CERT_DAYS,
                now: datetime | None = None) -> str:
    """A self-signed X.509v3 certificate (CN = device id, cut to X.509's 64 characters)."""
    now = now or datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id[:64])])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                     False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(key, algorithm)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_private_key(path: str | Path) -> PrivateKey:
    """Read an unencrypted PEM private key (SEC1, PKCS#1 or PKCS#8)."""
    try:
        data = Path(path).read_bytes()[: MAX_KEY_FILE + 1]
    except OSError as exc:
        raise InvalidKeyError(f"cannot read private key {path}: {exc.strerror}") from None
    if len(data) > MAX_KEY_FILE:
        raise InvalidKeyError(f"{path} is larger than {MAX_KEY_FILE} bytes")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidKeyError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise InvalidKeyError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def jwt_algorithm(key: PrivateKey, requested: str = "auto") -> str:
    natural = ("ES256" if isinstance(key, ec.EllipticCurvePrivateKey)
               and isinstance(key.curve, ec.SECP256R1)
               else "RS256" if isinstance(key, rsa.RSAPrivateKey) else None)
    if natural is None:
        raise InvalidKeyError("Cloud IoT JWTs need an EC P-256 (ES256) or RSA (RS256) key")
    if requested.upper() not in ("AUTO", natural):
        raise InvalidKeyError(f"algorithm {requested} does not fit this key (use {natural})")
    return natural


def mint_jwt(key: PrivateKey, project: str, *, ttl: int = 3600, algorithm: str = "auto",
             now: datetime | None = None) -> str:
    """The device JWT for the Cloud IoT MQTT/HTTP bridges: `aud` = project, `exp` ≤ 24 h."""
    if not project:
        raise InvalidKeyError("the JWT audience (project id) must not be empty")
    if not 1 <= ttl <= MAX_JWT_TTL:
        raise InvalidKeyError(f"JWT lifetime must be 1..{MAX_JWT_TTL} seconds, got {ttl}")
    issued = int((now or datetime.now(UTC)).timestamp())
    claims = {"aud": project, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, key, algorithm=jwt_algorithm(key, algorithm))


def write_kit(out_dir: str | Path, *, kind: KeyKind = "ec", device_id: str,
              force: bool = False, key: PrivateKey | None = None) -> Kit:
    """Write the same four files as provision-device.sh; the key is 0600 from its creation."""
    validate_device_id(device_id)
    out = Path(out_dir)
    key_path = out / KEY_NAME
    if (key_path.exists() or key_path.is_symlink()) and not force:
        raise InvalidKeyError(f"a key already exists at {key_path}; --force replaces it")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BridgeError(f"cannot create {out}: {exc.strerror}") from None
    key = key or generate_key(kind)
    cert_format, public_format = formats(key)
    paths = Kit(device_id, key_path, out / PUBLIC_NAME, out / CERT_NAME, out / ID_NAME,
                cert_format, public_format)
    try:
        _write(paths.public_path, public_pem(key).encode("ascii"), 0o644)
        _write(paths.cert_path, certificate(key, device_id).encode("ascii"), 0o644)
        _write(paths.id_path, f"{device_id}\n".encode("ascii"), 0o644)
        _write(key_path, private_pem(key), 0o600)
    except OSError as exc:
        raise BridgeError(f"cannot write the key kit in {out}: {exc.strerror}") from None
    return paths


def _write(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode, then renamed over the target: never visible half-written
    # and never readable by others, even for a moment.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class KeyCheck:
    """Whether one device key is usable in the registry and admitted in Mender, and why."""

    registry_ok: bool
    registry: str
    mender_ok: bool
    mender: str

    @property
    def ok(self) -> bool:
        return self.registry_ok and self.mender_ok


def check_key(registry: Registry, mender: Mender, refs: Iterable[RegistryRef], device_id: str,
              key: PublicKey, template: IdentityTemplate, *, policy: KeyPolicy = DEFAULT_POLICY,
              now: datetime | None = None) -> KeyCheck:
    """Find the device in the first registry that has it, match `key` against its credentials
    and against the auth sets of the Mender device with the templated identity."""
    now = now or datetime.now(UTC)
    searched = []
    for ref in refs:
        searched.append(ref.registry)
        try:
            device = registry.get_device(ref, device_id)
        except NotFound:
            continue
        break
    else:
        where = ", ".join(searched) or "no registry"
        return KeyCheck(False, f"device {device_id} not found (searched {where})",
                        False, "not checked: the identity needs the registry device")
    registry_ok, registry_text = _match_credentials(device, key, policy, now)
    identity = template.render(device)
    found = mender.find_by_identity(identity)
    if found is None:
        return KeyCheck(registry_ok, registry_text, False,
                        f"no device with identity {canonical_json(identity)}")
    for auth_set in found.auth_sets or ():
        if _same_key(auth_set.pubkey, key):
            usable = auth_set.status in (AuthStatus.ACCEPTED, AuthStatus.PREAUTHORIZED)
            return KeyCheck(registry_ok, registry_text, usable,
                            f"device {found.id} ({found.status.value}): auth set "
                            f"{auth_set.id} is {auth_set.status.value}")
    return KeyCheck(registry_ok, registry_text, False,
                    f"device {found.id} ({found.status.value}) has no auth set with this key")


def _match_credentials(device: RegistryDevice, key: PublicKey, policy: KeyPolicy,
                       now: datetime) -> tuple[bool, str]:
    total = len(device.credentials)
    for index, cred in enumerate(device.credentials, start=1):
        try:
            registered = normalize(cred.key, cred.format, policy=policy)
        except InvalidKeyError:
            continue
        if registered.pem != key.pem:
            continue
        label = cred.format.value if cred.format else "no format"
        where = f"{device}: credential {index} of {total} ({label})"
        if cred.is_expired(now):
            assert cred.expires_at is not None
            return False, f"{where} matches but expired on {cred.expires_at.isoformat()}"
        try:
            normalize(cred.key, cred.format, policy=policy, now=now)
        except InvalidKeyError as exc:
            return False, f"{where} matches but is not usable: {exc}"
        if device.blocked:
            return False, f"{where} matches but the device is blocked"
        return True, f"{where} matches"
    return False, f"{device}: none of its {total} credentials holds this key"


def _same_key(pubkey: str, key: PublicKey) -> bool:
    try:
        return normalize(pubkey).pem == key.pem
    except InvalidKeyError:
        return False
