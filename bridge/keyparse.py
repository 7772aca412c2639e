"""Strict parsing of one PEM block's DER into a public key (and its certificate, if any).

"Strict" means: DER only, as cryptography's ASN.1 reader takes it (no BER, no non-minimal
lengths, no trailing bytes); a PKCS#1 key must re-encode to the same bytes; a certificate has
every lazily read part (extensions, names, validity, signature algorithm, key) read here, and a
self-issued certificate must verify with its own key. What the key may be is `bridge.keys`'s
policy; this module only decides whether the bytes are a well-formed key or certificate.
"""

from __future__ import annotations

import base64
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from bridge.errors import InvalidKeyError

KINDS = ("PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE")
# What cryptography's X.509 reader raises for bad input (only the first is a ValueError).
_CERT_ERRORS = (ValueError, UnsupportedAlgorithm, x509.InvalidVersion, x509.DuplicateExtension,
                x509.UnsupportedGeneralNameType)
_NO_HASH = (x509.SignatureAlgorithmOID.ED25519, x509.SignatureAlgorithmOID.ED448)


def _why(exc: Exception) -> str:
    return "unsupported algorithm" if isinstance(exc, UnsupportedAlgorithm) else (
        "corrupt or truncated")


def public_key(kind: str, der: bytes) -> PublicKeyTypes:
    """A `PUBLIC KEY` (PKIX) or `RSA PUBLIC KEY` (PKCS#1) block's key."""
    if kind not in KINDS[:2]:
        raise InvalidKeyError(
            f"unsupported PEM block {kind!r} (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)"
        )
    try:
        return _load_pem(kind, der) if kind == "PUBLIC KEY" else _pkcs1(der)
    except InvalidKeyError:
        raise
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError(f"cannot parse the {kind} (DER): {_why(exc)}") from None


def _load_pem(kind: str, der: bytes) -> PublicKeyTypes:
    # Re-wrapped so that only the label says PKIX or PKCS#1, as for Go's parsers:
    # load_der_public_key would take a PKCS#1 key as well.
    label = kind.encode("ascii")
    return serialization.load_pem_public_key(b"-----BEGIN %s-----\n%s-----END %s-----\n" % (
        label, base64.encodebytes(der), label))


def _pkcs1(der: bytes) -> rsa.RSAPublicKey:
    # cryptography also takes PKIX under this label; Go's PKCS#1 parser does not. Re-encoding
    # tells them apart and refuses anything that is not exactly PKCS#1 DER.
    key = _load_pem("RSA PUBLIC KEY", der)
    if not isinstance(key, rsa.RSAPublicKey) or key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1) != der:
        raise InvalidKeyError("cannot parse the RSA PUBLIC KEY (DER): not PKCS#1 (a PKIX key's "
                              "PEM label is PUBLIC KEY)")
    return key


def _header(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, where the content starts, its length) of the DER element at `pos`."""
    tag, first = der[pos], der[pos + 1]
    if first < 0x80:
        return tag, pos + 2, first
    size = first & 0x7F
    return tag, pos + 2 + size, int.from_bytes(der[pos + 2:pos + 2 + size], "big")


def _children(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found = []
    while start < end:
        tag, content, length = _header(der, start)
        found.append((tag, content, length))
        start = content + length
    return found


def _shape_problem(der: bytes) -> str | None:
    """What cryptography's reader lets through but OpenSSL or RFC 5280 refuse, read from the
    DER itself (so that no library warning is printed): a serial number that is not positive
    (cryptography warns, Go refuses negative ones), and a signature BIT STRING with unused
    bits (OpenSSL refuses it; cryptography would verify the bytes regardless)."""
    try:
        _, content, length = _header(der, 0)
        tbs, _, signature = _children(der, content, content + length)[:3]
        fields = _children(der, tbs[1], tbs[1] + tbs[2])
        serial = fields[1] if fields[0][0] == 0xA0 else fields[0]  # after [0] version
    except (IndexError, ValueError):
        return None  # not even the outline of a certificate: the parser says what is wrong
    number = der[serial[1]:serial[1] + serial[2]]
    if serial[0] == 0x02 and (not number or number[0] >= 0x80 or not number.strip(b"\0")):
        return "its serial number is not positive"
    if signature[0] == 0x03 and der[signature[1]:signature[1] + 1] != b"\0":
        return "its signature is not a whole number of bytes"
    return None


def certificate(der: bytes) -> tuple[x509.Certificate, PublicKeyTypes]:
    """A `CERTIFICATE` block, read whole, and its key (not yet checked against any policy)."""
    problem = _shape_problem(der)
    if problem is not None:
        raise InvalidKeyError(f"cannot parse the certificate: {problem}")
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.extensions  # noqa: B018 -- read for its errors: a corrupt or repeated extension
        if cert.signature_hash_algorithm is None and cert.signature_algorithm_oid not in _NO_HASH:
            raise UnsupportedAlgorithm("signature algorithm without a hash")
        cert.issuer.rfc4514_string()
        cert.subject.rfc4514_string()
        cert.not_valid_before_utc  # noqa: B018
        cert.not_valid_after_utc  # noqa: B018
    except _CERT_ERRORS as exc:
        raise InvalidKeyError(f"cannot parse the certificate: {_why(exc)}") from None
    try:
        return cert, cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError(f"cannot parse the certificate's key: {_why(exc)}") from None


def check_self_signature(cert: x509.Certificate) -> None:
    """A self-issued certificate must verify with its own key, so a corrupted one (a flipped
    byte anywhere in what it signs, or in the signature) is refused. Call it only once the key
    passed the policy (no verification with a key of absurd size). A certificate issued by a
    registry CA cannot be verified here: Cloud IoT checks it against the registry's CA
    certificates when the credential is added (docs/cloud-iot.md)."""
    if _canonical(cert.issuer) != _canonical(cert.subject):
        return
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidKeyError("the certificate's self-signature does not verify "
                              "(corrupt or altered certificate)") from None


def _canonical(name: x509.Name) -> list[frozenset[tuple[str, str]]]:
    """A name as RFC 5280 (§7.1) and OpenSSL compare names: case and spacing folded, the
    string type ignored. A flipped letter case must not make a self-issued certificate look
    issued by someone else, which would skip its signature check."""
    return [frozenset((attr.oid.dotted_string, " ".join(str(attr.value).casefold().split()))
                      for attr in rdn) for rdn in name.rdns]


def check_validity(cert: x509.Certificate, now: datetime) -> None:
    """`now` must be timezone-aware. X.509 validity includes its notAfter second (RFC 5280
    §4.1.2.5), as Go's verifier checks it."""
    if cert.not_valid_after_utc < now:
        raise InvalidKeyError(f"certificate expired on {cert.not_valid_after_utc.isoformat()}")
    if cert.not_valid_before_utc > now:
        raise InvalidKeyError(
            f"certificate not valid before {cert.not_valid_before_utc.isoformat()}"
        )
