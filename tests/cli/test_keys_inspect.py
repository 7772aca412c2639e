"""`mender-bridge keys inspect`: what the bridge would send to Mender, or why it would not."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from bridge.cli import cli
from tests.keykit.procs import run

PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def spki_der(pem: str) -> bytes:
    return serialization.load_pem_public_key(pem.encode()).public_bytes(
        serialization.Encoding.DER, SPKI)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture
def rsa_pkcs1(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "device.pub"
    path.write_bytes(rsa_key.public_key().public_bytes(PEM, serialization.PublicFormat.PKCS1))
    return path


def invoke(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["keys", "inspect", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_text_output(rsa_pkcs1: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    code, out, err = invoke(str(rsa_pkcs1), "--format", "rsa_pem")
    pem = rsa_key.public_key().public_bytes(PEM, SPKI).decode()
    fingerprint = hashlib.sha256(spki_der(pem)).hexdigest()
    assert (code, err) == (0, "")
    assert out == f"type:        rsa (2048 bits)\nfingerprint: sha256:{fingerprint}\n{pem}"


def test_json_output_has_one_schema_for_each_key_type(tmp_path: Path, rsa_pkcs1: Path) -> None:
    ec_path, ed_path = tmp_path / "ec.pem", tmp_path / "ed.pem"
    ec_path.write_bytes(ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        PEM, SPKI))
    ed_path.write_bytes(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(PEM, SPKI))
    for path, kind, bits, curve in ((rsa_pkcs1, "rsa", 2048, None), (ec_path, "ec", 384, "P-384"),
                                    (ed_path, "ed25519", 256, "Ed25519")):
        code, out, _ = invoke("--json", str(path))
        assert code == 0
        obj = json.loads(out)
        assert obj == {"schema_version": 1, "type": kind, "bits": bits, "curve": curve,
                       "fingerprint": obj["fingerprint"], "pubkey": obj["pubkey"]}
        assert obj["pubkey"].startswith("-----BEGIN PUBLIC KEY-----\n")
        # The same prefix as the text output.
        assert obj["fingerprint"] == "sha256:" + hashlib.sha256(
            spki_der(obj["pubkey"])).hexdigest()


def test_stdin(rsa_pkcs1: Path) -> None:
    code, out, _ = invoke("--json", "-", stdin=rsa_pkcs1.read_bytes())
    assert code == 0 and json.loads(out)["bits"] == 2048
    code, out, err = invoke("-", stdin=rsa_pkcs1.read_bytes() + b"#" * (1 << 20))
    assert (code, out) == (2, "") and "larger than the limit" in err


@pytest.mark.parametrize(("content", "args", "message"), [
    (b"not a key", (), "not a PEM public key"),
    (None, ("--format", "ES256_PEM"), "format ES256_PEM does not match its content"),
    (b"x" * (1 << 20), (), "larger than"),
    (ec.generate_private_key(ec.SECP256R1()).private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), (), "private key"),
    (rsa.generate_private_key(65537, 1024).public_key().public_bytes(PEM, SPKI), (),  # noqa: S505
     "1024 bits is below the minimum"),
])
def test_rejected_key_exits_2_with_one_clear_line(
    tmp_path: Path, rsa_pkcs1: Path, content: bytes | None, args: tuple[str, ...], message: str
) -> None:
    path = rsa_pkcs1 if content is None else tmp_path / "bad.pem"
    if content is not None:
        path.write_bytes(content)
    code, out, err = invoke(*args, str(path))
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err
    if content is not None and b"PRIVATE" in content:
        assert content.splitlines()[1].decode() not in err


def certificate(key: ec.EllipticCurvePrivateKey, not_before: datetime,
                not_after: datetime) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device-1")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()).public_bytes(PEM))


def test_certificates_valid_and_expired(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    today = datetime.now(UTC)
    valid, expired = tmp_path / "valid.pem", tmp_path / "expired.pem"
    valid.write_bytes(certificate(key, today - timedelta(days=1), today + timedelta(days=3650)))
    expired.write_bytes(certificate(key, today - timedelta(days=30), today - timedelta(days=1)))
    code, out, _ = invoke("--json", "--format", "ES256_X509_PEM", str(valid))
    assert code == 0
    assert json.loads(out)["pubkey"] == key.public_key().public_bytes(PEM, SPKI).decode()
    code, out, err = invoke("--format", "ES256_X509_PEM", str(expired))
    assert (code, out) == (2, "") and "certificate expired on" in err


def test_missing_file_and_unknown_format_are_usage_errors(tmp_path: Path) -> None:
    code, _, err = invoke(str(tmp_path / "missing.pem"))
    assert code == 2 and "cannot read" in err
    code, _, err = invoke(str(tmp_path))
    assert code == 2 and "is not a regular file" in err
    code, _, err = invoke("--format", "RS256", str(tmp_path / "missing.pem"))
    assert code == 2 and "RS256" in err


def test_real_subprocess(rsa_pkcs1: Path, tmp_path: Path) -> None:
    ok = run([sys.executable, "-m", "bridge", "keys", "inspect", "--json", rsa_pkcs1],
             timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["type"] == "rsa"
    bad = tmp_path / "garbage.pem"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    failed = run([sys.executable, "-m", "bridge", "keys", "inspect", bad], timeout=60)
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr.startswith("mender-bridge: error: cannot parse the PUBLIC KEY")
    assert len(failed.stderr.splitlines()) == 1
