"""A corpus of hostile keys and key files: none is accepted by `bridge.keys` for sending, none
reaches Mender (the Mender client normalizes before it sends, and no request leaves it), and
none costs more than 100 ms of CPU to refuse."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, x25519
from cryptography.x509.oid import NameOID, ObjectIdentifier

from bridge import keykit, keys
from bridge.errors import InvalidKeyError
from bridge.mender import MenderClient
from bridge.model import Credential, CredentialFormat, Secret
from tests.core.key_material import (
    PEM,
    SPKI,
    cert_der,
    certificate,
    der,
    flip,
    keyring,
    pem_block,
    rsa_pkcs1,
    rsa_spki,
)
from tests.keykit.procs import run

# Why a CPU bound in a unit test is acceptable here, once: it is a complexity guard, not a
# benchmark. The quadratic PEM scanner this replaces took about 2 s of CPU on the repeated-BEGIN
# inputs below (7 s on a slower machine), twenty times this bound, while a linear parse of any
# entry takes a few milliseconds. process_time() counts this process's CPU only, so a loaded
# machine stretches it far less than wall time, and the margin is over ten times.
CPU_BOUND = 0.1
LIMIT = keys.MAX_INPUT
MENDER = "https://mender.example.com"
PRIVATE = serialization.PrivateFormat
NONE = serialization.NoEncryption()

Build = Callable[[], bytes]
# The most DER one PEM block can carry within the limit: base64 turns each 57 bytes into a line
# of 76 characters and a newline; 64 bytes are left for the BEGIN and END lines.
DER_AT_LIMIT = (LIMIT - 64) // 77 * 57


def _n() -> int:
    return keyring()["rsa2048"].public_key().public_numbers().n  # type: ignore[union-attr]


def _spki(key: object) -> bytes:
    return key.public_key().public_bytes(PEM, SPKI)  # type: ignore[attr-defined, no-any-return]


def _private(key: object, fmt: serialization.PrivateFormat,
             encryption: serialization.KeySerializationEncryption = NONE) -> bytes:
    return key.private_bytes(PEM, fmt, encryption)  # type: ignore[attr-defined, no-any-return]


def _issued_by_other(subject_key: object) -> bytes:
    """A certificate for `subject_key` issued by another key (not self-issued)."""
    issuer = keyring()["p256"]
    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # noqa: E731
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name("device")).issuer_name(name("ca"))
            .public_key(subject_key).serial_number(9)  # type: ignore[arg-type]
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=9))
            .sign(issuer, hashes.SHA256()).public_bytes(PEM))


def _many_extensions() -> bytes:
    """A self-signed certificate with 600 extensions and its signature corrupted: parsing all
    of it and trying the signature is the most work a certificate can ask for."""
    key = keyring()["p256"]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(3)
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=9)))
    for i in range(600):
        builder = builder.add_extension(x509.UnrecognizedExtension(
            ObjectIdentifier(f"1.3.6.1.4.1.55555.{i}"), b"\x04\x20" + bytes(32)), critical=False)
    signed = cert_der(builder.sign(key, hashes.SHA256()).public_bytes(PEM))
    return pem_block("CERTIFICATE", flip(signed, len(signed) - 2))


def _at_limit(unit: bytes, tail: bytes = b"") -> bytes:
    return unit * ((LIMIT - len(tail)) // len(unit)) + tail


def _cert_flip(at: Callable[[bytes], int]) -> Build:
    def build() -> bytes:
        data = cert_der(certificate(keyring()["rsa2048"]))
        return pem_block("CERTIFICATE", flip(data, at(data), 0xFF))
    return build


CORPUS: dict[str, Build] = {
    # RSA numbers Go's crypto/rsa refuses (Mender would store the key, then 401 the device).
    "rsa-even-modulus": lambda: pem_block("PUBLIC KEY", rsa_spki(_n() + 1, 65537)),
    "rsa-even-modulus-pkcs1": lambda: pem_block("RSA PUBLIC KEY", rsa_pkcs1(_n() + 1, 65537)),
    "rsa-even-modulus-in-certificate": lambda: _issued_by_other(
        serialization.load_der_public_key(rsa_spki(_n() + 1, 65537))),
    "rsa-exponent-2^31+1": lambda: pem_block("PUBLIC KEY", rsa_spki(_n(), 2**31 + 1)),
    "rsa-exponent-even": lambda: pem_block("PUBLIC KEY", rsa_spki(_n(), 65536)),
    "rsa-exponent-60000-bytes": lambda: pem_block("PUBLIC KEY", rsa_spki(
        _n(), (1 << 350_000) + 1)),
    "rsa-modulus-65000-bits": lambda: pem_block("PUBLIC KEY", rsa_spki((1 << 65000) - 1, 65537)),
    "rsa-modulus-negative": lambda: pem_block("PUBLIC KEY", rsa_spki(-_n(), 65537)),
    # Corrupted certificate DER (flipped bytes): unparseable, or a self-signature that fails.
    "cert-flipped-outer-length": _cert_flip(lambda d: 1),
    "cert-flipped-tbs-tag": _cert_flip(lambda d: 4),
    "cert-flipped-validity": _cert_flip(lambda d: d.index(b"\x17\x0d") + 5),
    "cert-flipped-key-bits": _cert_flip(lambda d: d.index(b"\x02\x82\x01\x01") + 40),
    "cert-flipped-signature": _cert_flip(lambda d: len(d) - 1),
    "cert-600-extensions-bad-signature": _many_extensions,
    # Curves and key types Mender cannot use or the policy refuses.
    "curve-secp256k1": lambda: _spki(keyring()["k256"]),
    "curve-p192": lambda: _spki(keyring()["p192"]),
    "curve-p224": lambda: _spki(ec.generate_private_key(ec.SECP224R1())),
    "curve-brainpool": lambda: _spki(ec.generate_private_key(ec.BrainpoolP256R1())),
    "x25519": lambda: _spki(x25519.X25519PrivateKey.generate()),
    "ed448": lambda: _spki(ed448.Ed448PrivateKey.generate()),
    "dsa": lambda: _spki(dsa.generate_private_key(1024)),  # noqa: S505 -- must be refused
    # A private key given as the public one, in every wrapping.
    "private-pkcs8": lambda: _private(keyring()["p256"], PRIVATE.PKCS8),
    "private-sec1": lambda: _private(keyring()["p256"], PRIVATE.TraditionalOpenSSL),
    "private-pkcs1": lambda: _private(keyring()["rsa2048"], PRIVATE.TraditionalOpenSSL),
    "private-encrypted": lambda: _private(keyring()["p256"], PRIVATE.PKCS8,
                                          serialization.BestAvailableEncryption(b"pw")),
    "private-relabelled-public": lambda: _private(keyring()["p256"], PRIVATE.PKCS8).replace(
        b"PRIVATE KEY", b"PUBLIC KEY"),
    # Parsing cost at the size limit.
    "repeated-begin-lines": lambda: _at_limit(b"-----BEGIN PUBLIC KEY-----\n"),
    "repeated-begin-no-label-end": lambda: _at_limit(b"-----BEGIN "),
    "repeated-begin-then-one-end": lambda: _at_limit(
        b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n"),
    "repeated-dashes": lambda: _at_limit(b"-"),
    "label-of-64k": lambda: b"-----BEGIN " + b"A" * (LIMIT - 16) + b"-----",
    "2000-empty-blocks": lambda: _at_limit(b"-----BEGIN X----------END X-----"),
    "one-block-of-64k-base64": lambda: pem_block("PUBLIC KEY", bytes(DER_AT_LIMIT)),
    "nested-der-sequences": lambda: pem_block("PUBLIC KEY", _nested(20_000)),
    "over-the-limit": lambda: _spki(keyring()["p256"]) + b"#" * LIMIT,
}


def _nested(depth: int) -> bytes:
    body = b""
    for _ in range(depth):
        if len(body) + 4 > DER_AT_LIMIT:
            break
        body = der(0x30, body)
    return body


@pytest.fixture(scope="module")
def corpus() -> dict[str, bytes]:
    return {name: build() for name, build in CORPUS.items()}


def test_the_size_limit_entries_are_within_the_limit(corpus: dict[str, bytes]) -> None:
    at_limit = [n for n in corpus if n.startswith(("repeated-", "label-", "2000-", "one-block",
                                                   "nested-"))]
    assert len(at_limit) == 8
    assert all(LIMIT - 100 < len(corpus[n]) <= LIMIT for n in at_limit), {
        n: len(corpus[n]) for n in at_limit}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_no_hostile_key_is_accepted_for_sending_and_each_is_refused_cheaply(
    name: str, corpus: dict[str, bytes]
) -> None:
    data = corpus[name]
    for label in (None, *CredentialFormat):
        start = time.process_time()
        with pytest.raises(InvalidKeyError):
            keys.normalize(data, label)
        spent = time.process_time() - start
        assert spent < CPU_BOUND, f"{name} ({label}) took {spent * 1000:.0f} ms of CPU"
    usable, problems = keys.usable_keys([Credential(data.decode("latin-1"), label)
                                         for label in (None, *CredentialFormat)])
    assert (usable, len(problems)) == ([], 5)


@pytest.fixture
def mender() -> Iterator[tuple[MenderClient, responses.RequestsMock]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, f"{MENDER}/api/management/v2/devauth/devices", status=201,
                 headers={"Location": "devices/new-id"})
        yield MenderClient(MENDER, token=Secret("token")), mock


def test_no_hostile_key_reaches_mender(mender: tuple[MenderClient, responses.RequestsMock],
                                       corpus: dict[str, bytes]) -> None:
    client, sent = mender
    for name, data in corpus.items():
        with pytest.raises(InvalidKeyError):
            client.preauthorize({"google_iot_id": "victim"}, data.decode("latin-1"), force=True)
        assert len(sent.calls) == 0, f"{name} was sent to Mender"
    # The control: a good key is sent, so the check above could have seen a request.
    client.preauthorize({"google_iot_id": "victim"}, _spki(keyring()["p256"]).decode())
    assert len(sent.calls) == 1


# -- key files: only regular files, read with a cap, never waited on ---------------------------
def _fifo(tmp: Path) -> Path:
    path = tmp / "key.fifo"
    os.mkfifo(path)
    return path


def _directory(tmp: Path) -> Path:
    (tmp / "dir.pem").mkdir()
    return tmp / "dir.pem"


def _link_to_zero(tmp: Path) -> Path:
    (tmp / "zero.pem").symlink_to("/dev/zero")
    return tmp / "zero.pem"


def _oversized(tmp: Path) -> Path:
    path = tmp / "big.pem"
    with path.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse: 1 GiB that costs nothing to make
    return path


FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "dev-zero": (lambda _: Path("/dev/zero"), "is not a regular file"),
    "dev-urandom": (lambda _: Path("/dev/urandom"), "is not a regular file"),
    "fifo-without-writer": (_fifo, "is not a regular file"),
    "directory": (_directory, "is not a regular file"),
    "symlink-to-dev-zero": (_link_to_zero, "is not a regular file"),
    "sparse-1-GiB": (_oversized, "larger than the limit"),
    "missing": (lambda tmp: tmp / "missing.pem", "cannot read"),
}


# A FIFO without a writer would block an ordinary open() forever: the timeout is the hang guard.
@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", sorted(FILES))
def test_key_files_are_read_only_if_regular_and_small(name: str, tmp_path: Path) -> None:
    make, message = FILES[name]
    path = make(tmp_path)
    start = time.process_time()
    with pytest.raises(InvalidKeyError, match=message) as caught:
        keykit.read_key_file(path, LIMIT)
    assert time.process_time() - start < CPU_BOUND
    assert "\n" not in str(caught.value)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["dev-zero", "fifo-without-writer", "sparse-1-GiB"])
def test_keys_inspect_refuses_them_in_one_line(name: str, tmp_path: Path) -> None:
    path = FILES[name][0](tmp_path)
    result = run([sys.executable, "-m", "bridge", "keys", "inspect", path], timeout=50)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("mender-bridge: error: ")
    assert len(result.stderr.splitlines()) == 1
    assert FILES[name][1] in result.stderr
