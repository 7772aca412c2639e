"""keys.normalize and keys.usable_keys: every credential format, every refusal, table-driven."""

from __future__ import annotations

import base64
import enum
import hashlib
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import keys
from bridge.errors import InvalidKeyError
from bridge.model import Credential, CredentialFormat, KeyType

Private = CertificateIssuerPrivateKeyTypes
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PEM = serialization.Encoding.PEM
NOW = datetime(2026, 6, 1, tzinfo=UTC)
F = CredentialFormat

# name → (type, bits, curve)
GOOD = {
    "rsa2048": (KeyType.RSA, 2048, None),
    "rsa3072": (KeyType.RSA, 3072, None),
    "rsa4096": (KeyType.RSA, 4096, None),
    "p256": (KeyType.EC, 256, "P-256"),
    "p384": (KeyType.EC, 384, "P-384"),
    "ed25519": (KeyType.ED25519, 256, "Ed25519"),
}
# (key, variant, label): every format each key can take, with and without the registry label.
CASES = [
    *[(k, v, lab) for k in ("rsa2048", "rsa3072", "rsa4096")
      for v, lab in (("spki", F.RSA_PEM), ("pkcs1", F.RSA_PEM), ("cert", F.RSA_X509_PEM),
                     ("spki", None), ("pkcs1", None), ("cert", None))],
    ("p256", "spki", F.ES256_PEM), ("p256", "cert", F.ES256_X509_PEM),
    ("p256", "spki", None), ("p256", "cert", None),
    ("p256", "spki", "es256_pem"),  # labels are case-insensitive strings too
    ("p384", "spki", None), ("p384", "cert", None),
    ("ed25519", "spki", None), ("ed25519", "cert", None),
]


@pytest.fixture(scope="module")
def keyring() -> dict[str, Private]:
    """Every private key once per module (RSA 4096 generation is slow)."""
    return {
        "rsa2048": rsa.generate_private_key(65537, 2048),
        "rsa3072": rsa.generate_private_key(65537, 3072),
        "rsa4096": rsa.generate_private_key(65537, 4096),
        "rsa1024": rsa.generate_private_key(65537, 1024),  # noqa: S505 -- must be refused
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "p192": ec.generate_private_key(ec.SECP192R1()),
        "k256": ec.generate_private_key(ec.SECP256K1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "dsa": dsa.generate_private_key(1024),  # noqa: S505 -- must be refused
    }


def certificate(key: Private, not_before: datetime = NOW - timedelta(days=1),
                not_after: datetime = NOW + timedelta(days=365)) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device-1")])
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, algorithm))
    return cert.public_bytes(PEM)


def encode(key: Private, variant: str) -> bytes:
    if variant == "cert":
        return certificate(key)
    fmt = serialization.PublicFormat.PKCS1 if variant == "pkcs1" else SPKI
    return key.public_key().public_bytes(PEM, fmt)


def expected_pem(key: Private) -> tuple[str, str]:
    """Mender's form built by hand from the DER: 64-column base64, `\\n`, final newline."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, SPKI)
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n", \
        hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize(("name", "variant", "label"), CASES)
def test_every_format_normalizes_to_menders_pem(
    keyring: dict[str, Private], name: str, variant: str, label: str | None
) -> None:
    key = keyring[name]
    got = keys.normalize(encode(key, variant), label, now=NOW)
    pem, fingerprint = expected_pem(key)
    assert got.pem == pem
    assert all(len(line) <= 64 for line in got.pem.splitlines())
    assert (got.type, got.bits, got.curve) == GOOD[name]
    assert got.fingerprint == fingerprint
    assert keys.normalize(got.pem) == got


def test_known_vector_from_openssl() -> None:
    """PKCS#1 input; expected SPKI PEM and DER fingerprint produced by the openssl CLI."""
    pkcs1 = """-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAxk7Jpcv1Dwx/Auqi8hbg/c+YQWbAIx9hW9VG9ChsgG+lstYjndTO
z4XmdWj7j3ueM0TSUdD/G5ctXghp8G8MsRX80BNkfypGvdVTo2QXLMLPUAENux3C
vVxhOGPKqN+dzbiJZs2B8MHSAIfOC3NiiS07fZgclDEwBftIHa39IKgPHQOAaJz3
V32e46jX6XlO/aCaTOgLTxIJdry6IH+JWqt6tRqHPmw/994Xic6QHtJC29Wk5txQ
/aJwCxd8pDcvihu9sgUSdu5Uret14nMstl6jhlil2aJbfz80TCxPd1abUB6euXxA
9aq/PcMTJ8xBCBXNnbwqnYNIEmdVVoNr/wIDAQAB
-----END RSA PUBLIC KEY-----
"""
    spki = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxk7Jpcv1Dwx/Auqi8hbg
/c+YQWbAIx9hW9VG9ChsgG+lstYjndTOz4XmdWj7j3ueM0TSUdD/G5ctXghp8G8M
sRX80BNkfypGvdVTo2QXLMLPUAENux3CvVxhOGPKqN+dzbiJZs2B8MHSAIfOC3Ni
iS07fZgclDEwBftIHa39IKgPHQOAaJz3V32e46jX6XlO/aCaTOgLTxIJdry6IH+J
Wqt6tRqHPmw/994Xic6QHtJC29Wk5txQ/aJwCxd8pDcvihu9sgUSdu5Uret14nMs
tl6jhlil2aJbfz80TCxPd1abUB6euXxA9aq/PcMTJ8xBCBXNnbwqnYNIEmdVVoNr
/wIDAQAB
-----END PUBLIC KEY-----
"""
    fingerprint = "77c59e5630d712774170145e160afd8f4e5b43a2b598cfd05dcd123e23c36aea"
    for text in (pkcs1, spki, spki.replace("\n", "\r\n"), "  " + spki.replace("\n", "\n  ")):
        got = keys.normalize(text, "RSA_PEM")
        assert (got.pem, got.fingerprint, got.bits) == (spki, fingerprint, 2048)


def test_compressed_ec_point_is_expanded() -> None:
    """Go's parser refuses compressed points; the bridge sends the uncompressed form (openssl)."""
    compressed = ("-----BEGIN PUBLIC KEY-----\n"
                  "MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACS0OF09Dzv0y493Y5gh2buuOAW0KD\n"
                  "3G5SgpFz7Lvzr8k=\n-----END PUBLIC KEY-----\n")
    got = keys.normalize(compressed, F.ES256_PEM)
    assert got.pem == ("-----BEGIN PUBLIC KEY-----\n"
                       "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAES0OF09Dzv0y493Y5gh2buuOAW0KD\n"
                       "3G5SgpFz7Lvzr8nai9UalAoh2D8PJg52gMRx4hWDHY1RVaC32LvgFVuNKA==\n"
                       "-----END PUBLIC KEY-----\n")
    assert got.fingerprint == "e1de8d110009845a27fd2a6a756ffb3d0451d2b91cc7e7688d55eb20d0f0bf44"


def spki_of(name: str) -> Callable[[dict[str, Private]], bytes]:
    return lambda ring: encode(ring[name], "spki")


def x25519_spki(_: dict[str, Private]) -> bytes:
    return x25519.X25519PrivateKey.generate().public_key().public_bytes(PEM, SPKI)


def private_pem(ring: dict[str, Private]) -> bytes:
    return ring["p256"].private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


BAD: list[tuple[str, Callable[[dict[str, Private]], bytes], str | None, str]] = [
    ("garbage", lambda _: b"\x00\xffnot a key at all", None, "no BEGIN/END"),
    ("empty", lambda _: b"", None, "no BEGIN/END"),
    ("truncated-no-end", lambda r: spki_of("p256")(r)[:90], None, "no matching END"),
    ("truncated-body", lambda r: spki_of("rsa2048")(r)[:200] + b"\n-----END PUBLIC KEY-----\n",
     None, "PUBLIC KEY"),
    ("flipped-der", lambda r: spki_of("p256")(r).replace(b"MFkwEwYHKoZI", b"MFkwEwYHKoZJ"),
     None, "cannot parse"),
    ("rsa1024", spki_of("rsa1024"), None, "1024 bits is below the minimum of 2048"),
    ("dsa", spki_of("dsa"), None, "DSA"),
    ("x25519", x25519_spki, None, "X25519"),
    ("p192", spki_of("p192"), None, "curve secp192r1 is not allowed"),
    ("secp256k1", spki_of("k256"), None, "curve secp256k1 is not allowed"),
    ("rsa-as-es256", spki_of("rsa2048"), "ES256_PEM", "format ES256_PEM does not match"),
    ("ec-as-rsa", spki_of("p256"), "RSA_PEM", "format RSA_PEM does not match"),
    ("cert-as-bare", lambda r: certificate(r["rsa2048"]), "RSA_PEM", "does not match"),
    ("bare-as-cert", spki_of("p256"), "ES256_X509_PEM", "does not match"),
    ("p384-as-es256", spki_of("p384"), "ES256_PEM", "needs a P-256 key"),
    ("ed25519-as-es256", spki_of("ed25519"), "ES256_PEM", "does not match"),
    ("unknown-label", spki_of("p256"), "ES512_PEM", "unknown credential format"),
    ("two-blocks", lambda r: spki_of("p256")(r) + spki_of("p384")(r), None, "found 2"),
    ("cert-chain", lambda r: certificate(r["p256"]) + certificate(r["p384"]), None, "found 2"),
    ("1MiB", lambda r: spki_of("p256")(r) + b"#" * (1 << 20), None, "larger than"),
    ("private-key", private_pem, None, "private key"),
    ("private-and-public", lambda r: private_pem(r) + spki_of("p256")(r), None, "private key"),
    ("pkcs1-labelled-pkix", lambda r: encode(r["rsa2048"], "pkcs1").replace(
        b"RSA PUBLIC KEY", b"PUBLIC KEY"), None, "cannot parse"),
    ("pkix-labelled-pkcs1", lambda r: spki_of("rsa2048")(r).replace(
        b"PUBLIC KEY", b"RSA PUBLIC KEY"), None, "cannot parse"),
    ("csr-block", lambda r: spki_of("p256")(r).replace(b"PUBLIC KEY", b"CERTIFICATE REQUEST"),
     None, "unsupported PEM block"),
    ("empty-block", lambda _: b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
     None, "empty"),
    ("cert-garbage", lambda r: spki_of("p256")(r).replace(b"PUBLIC KEY", b"CERTIFICATE"),
     None, "cannot parse the certificate"),
]


@pytest.mark.parametrize(("name", "build", "label", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_raise_a_clear_invalid_key_error(
    keyring: dict[str, Private], name: str, build: Callable[[dict[str, Private]], bytes],
    label: str | None, message: str,
) -> None:
    data = build(keyring)
    for as_given in (data, data.decode("latin-1")):
        with pytest.raises(InvalidKeyError) as caught:
            keys.normalize(as_given, label, now=NOW)
        text = str(caught.value)
        assert message in text
        body_lines = [ln.strip() for ln in data.splitlines() if b"-----" not in ln]
        assert not any(ln[:16].decode("latin-1") in text for ln in body_lines if len(ln) >= 16)


class GooglePublicKeyFormat(enum.IntEnum):
    """Shaped like google.cloud.iot_v1.PublicKeyFormat."""

    UNSPECIFIED_PUBLIC_KEY_FORMAT = 0
    RSA_X509_PEM = 1
    ES256_PEM = 2


def test_parse_format_takes_client_enums_by_name() -> None:
    assert keys.parse_format(GooglePublicKeyFormat.ES256_PEM) is F.ES256_PEM
    assert keys.parse_format(" rsa_x509_pem ") is F.RSA_X509_PEM
    assert keys.parse_format(None) is None
    for bad in (GooglePublicKeyFormat.UNSPECIFIED_PUBLIC_KEY_FORMAT, "", 3):
        with pytest.raises(InvalidKeyError, match="unknown credential format"):
            keys.parse_format(bad)  # type: ignore[arg-type]


def test_rsa_exponent_go_cannot_verify_with_is_refused(keyring: dict[str, Private]) -> None:
    modulus = keyring["rsa2048"].public_key().public_numbers().n  # type: ignore[union-attr]
    big_e = rsa.RSAPublicNumbers(2**31 + 1, modulus).public_key().public_bytes(PEM, SPKI)
    with pytest.raises(InvalidKeyError, match="exponent"):
        keys.normalize(big_e)


@pytest.mark.parametrize(("policy", "name", "message"), [
    (keys.KeyPolicy(min_rsa_bits=3072), "rsa2048", "below the minimum of 3072"),
    (keys.KeyPolicy(curves=frozenset({"P-384"})), "p256", "P-256 is not allowed"),
    (keys.KeyPolicy(allow_ed25519=False), "ed25519", "Ed25519"),
])
def test_policy_is_configurable(keyring: dict[str, Private], policy: keys.KeyPolicy,
                                name: str, message: str) -> None:
    with pytest.raises(InvalidKeyError, match=message):
        keys.normalize(encode(keyring[name], "spki"), policy=policy)
    assert keys.normalize(encode(keyring["rsa3072"], "spki"), policy=policy).bits == 3072


@pytest.mark.parametrize(("now", "message"), [
    (NOW + timedelta(days=400), "certificate expired on"),
    (NOW - timedelta(days=2), "certificate not valid before"),
    ((NOW + timedelta(days=400)).replace(tzinfo=None), "certificate expired on"),  # naive = UTC
])
def test_expired_or_future_certificate_is_reported(
    keyring: dict[str, Private], now: datetime, message: str
) -> None:
    cert = certificate(keyring["p256"])
    with pytest.raises(InvalidKeyError, match=message):
        keys.normalize(cert, F.ES256_X509_PEM, now=now)
    assert keys.normalize(cert, F.ES256_X509_PEM).curve == "P-256"  # no `now`: no check


def test_certificate_is_valid_through_its_not_after_second(keyring: dict[str, Private]) -> None:
    cert = certificate(keyring["p256"], not_before=NOW, not_after=NOW + timedelta(hours=1))
    assert keys.normalize(cert, now=NOW + timedelta(hours=1)).curve == "P-256"
    assert keys.normalize(cert, now=NOW).curve == "P-256"
    with pytest.raises(InvalidKeyError, match="expired"):
        keys.normalize(cert, now=NOW + timedelta(hours=1, seconds=1))


def test_usable_keys_drops_expired_invalid_and_duplicate_credentials(
    keyring: dict[str, Private],
) -> None:
    rsa_spki = encode(keyring["rsa2048"], "spki").decode()
    creds = [
        Credential(rsa_spki, F.RSA_PEM, NOW + timedelta(days=1)),            # usable
        Credential(encode(keyring["p256"], "spki").decode(), F.ES256_PEM,
                   NOW - timedelta(seconds=1)),                               # expired
        Credential(certificate(keyring["rsa2048"]).decode(), F.RSA_X509_PEM),  # same key again
        Credential(encode(keyring["rsa1024"], "spki").decode(), F.RSA_PEM),   # policy
        Credential(encode(keyring["p384"], "spki").decode(), None,
                   datetime(1970, 1, 1, tzinfo=UTC)),                         # epoch = no expiry
        Credential(certificate(keyring["ed25519"], not_after=NOW - timedelta(days=1),
                               not_before=NOW - timedelta(days=9)).decode()),  # cert expired
    ]
    usable, problems = keys.usable_keys(creds, now=NOW)
    assert [k.pem for k in usable] == [expected_pem(keyring[n])[0] for n in ("rsa2048", "p384")]
    assert [p.index for p in problems] == [1, 3, 5]
    assert problems[0].reason.startswith("expired on 2026-05-31")
    assert "below the minimum" in problems[1].reason
    assert "certificate expired" in problems[2].reason
    naive, _ = keys.usable_keys(creds, now=NOW.replace(tzinfo=None))
    assert naive == usable
    assert keys.usable_keys([], now=NOW) == ([], [])


CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
WHITESPACE = [
    lambda t: t,
    lambda t: t.replace("\n", "\r\n"),
    lambda t: "\n".join("   " + line for line in t.splitlines()),
    lambda t: "subject=device-1\n" + t + "\ntrailing text\n",
    lambda t: t.rstrip("\n"),
]


@st.composite
def generated_keys(draw: st.DrawFn) -> Private:
    kind = draw(st.sampled_from(["ec", "ed25519"]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(draw(st.binary(min_size=32,
                                                                           max_size=32)))
    curve = CURVES[draw(st.sampled_from(sorted(CURVES)))]
    order_bits = 256 if curve.key_size == 256 else curve.key_size
    scalar = draw(st.integers(min_value=1, max_value=2 ** (order_bits - 1)))
    return ec.derive_private_key(scalar, curve)


@settings(max_examples=150, deadline=None)
@given(key=generated_keys(), variant=st.sampled_from(["spki", "cert"]),
       layout=st.sampled_from(WHITESPACE))
def test_normalize_is_idempotent_for_any_ec_or_ed25519_key(
    key: Private, variant: str, layout: Callable[[str], str]
) -> None:
    first = keys.normalize(layout(encode(key, variant).decode()))
    assert first.pem == expected_pem(key)[0]
    assert keys.normalize(first.pem) == first
    assert keys.normalize(first.pem.encode()) == first


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["rsa2048", "rsa3072", "rsa4096"]),
       variant=st.sampled_from(["spki", "pkcs1", "cert"]), layout=st.sampled_from(WHITESPACE))
def test_normalize_is_idempotent_for_rsa(keyring: dict[str, Private], name: str, variant: str,
                                        layout: Callable[[str], str]) -> None:
    first = keys.normalize(layout(encode(keyring[name], variant).decode()))
    assert keys.normalize(first.pem) == first


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=3000), st.text(max_size=3000)))
def test_arbitrary_input_only_ever_raises_invalid_key_error(data: bytes | str) -> None:
    with pytest.raises(InvalidKeyError):
        keys.normalize(data)


P256_SPKI = ("-----BEGIN PUBLIC KEY-----\n"
             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAES0OF09Dzv0y493Y5gh2buuOAW0KD\n"
             "3G5SgpFz7Lvzr8nai9UalAoh2D8PJg52gMRx4hWDHY1RVaC32LvgFVuNKA==\n"
             "-----END PUBLIC KEY-----\n")


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, len(P256_SPKI) - 1), char=st.characters(), fmt=st.sampled_from(
    [None, *CredentialFormat]))
def test_a_corrupted_key_is_normalized_or_refused_never_crashes(
    position: int, char: str, fmt: CredentialFormat | None
) -> None:
    mutated = P256_SPKI[:position] + char + P256_SPKI[position + 1:]
    try:
        got = keys.normalize(mutated, fmt)
    except InvalidKeyError as exc:
        assert "S0OF09Dzv0y493Y5" not in str(exc)
    else:
        assert keys.normalize(got.pem) == got
