"""A test PKI following the IEEE 2030.5 / CSIP certificate profile (2030.5-2018 clause 6.11.8).

The chain is SERCA (self-signed root) → MCA (manufacturer CA) → device certificates, all
ECDSA on P-256 with SHA-256. Device certificates carry an empty subject, a
``HardwareModuleName`` (RFC 4108) in subjectAltName, the 2030.5 device and test policy
OIDs, a critical key usage of digitalSignature + keyAgreement, and the indefinite expiry
``99991231235959Z`` that the profile prescribes. The server certificate adds a DNS/IP
subjectAltName so clients that check host names (e.g. py20305) accept it on loopback.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from derms.adapters.ieee2030_5.identity import lfdi_from_cert_der, sfdi_from_lfdi

POLICY_DEVICE = ObjectIdentifier("1.3.6.1.4.1.40732.1.1")
"""id-sep2-policy-device (2030.5-2018 6.11.8.3)."""
POLICY_TEST = ObjectIdentifier("1.3.6.1.4.1.40732.2.1")
"""id-sep2-policy-test: marks certificates of a test PKI."""
HARDWARE_MODULE_NAME = ObjectIdentifier("1.3.6.1.5.5.7.8.4")
"""id-on-hardwareModuleName (RFC 4108 5)."""
INDEFINITE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate with its private key, PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def lfdi(self) -> str:
        return lfdi_from_cert_der(self.certificate.public_bytes(serialization.Encoding.DER))

    @property
    def sfdi(self) -> int:
        return sfdi_from_lfdi(self.lfdi)

    def write(self, directory: Path, name: str, chain: tuple[Issued, ...] = ()) -> tuple[Path, Path]:
        """Write ``name.pem`` (certificate followed by ``chain``) and ``name.key``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(self.cert_pem + b"".join(c.cert_pem for c in chain))
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_oid(oid: str) -> bytes:
    parts = [int(p) for p in oid.split(".")]
    body = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body.extend(reversed(chunk))
    return b"\x06" + _der_length(len(body)) + bytes(body)


def hardware_module_name(hw_type: str, serial: bytes) -> x509.OtherName:
    """``HardwareModuleName ::= SEQUENCE { hwType OID, hwSerialNum OCTET STRING }`` (RFC 4108)."""
    inner = _der_oid(hw_type) + b"\x04" + _der_length(len(serial)) + serial
    return x509.OtherName(HARDWARE_MODULE_NAME, b"\x30" + _der_length(len(inner)) + inner)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey
) -> Issued:
    cert = builder.public_key(key.public_key()).sign(signer, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def _base(issuer: x509.Name, subject: x509.Name, not_before: datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .issuer_name(issuer)
        .subject_name(subject)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(INDEFINITE)
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(False, False, False, False, False, True, True, False, False)


class TestPki:
    """SERCA and MCA, able to issue device and server certificates."""

    __test__ = False  # not a pytest class

    def __init__(self, now: datetime, organisation: str = "derms test") -> None:
        self._now = now - timedelta(minutes=5)
        serca_key, mca_key = _key(), _key()
        self.serca_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                x509.NameAttribute(NameOID.COMMON_NAME, "SERCA"),
            ]
        )
        self.mca_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                x509.NameAttribute(NameOID.COMMON_NAME, "MCA"),
            ]
        )
        policies = x509.CertificatePolicies([x509.PolicyInformation(POLICY_DEVICE, None)])
        self.serca = _issue(
            _base(self.serca_name, self.serca_name, self._now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(serca_key.public_key()), critical=False),
            serca_key,
            serca_key,
        )
        self.mca = _issue(
            _base(self.serca_name, self.mca_name, self._now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(policies, critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(serca_key.public_key()), critical=False
            ),
            mca_key,
            serca_key,
        )
        self._serca_key, self._mca_key = serca_key, mca_key

    def device(self, serial: str, hw_type: str = "1.3.6.1.4.1.53630.1.1") -> Issued:
        """A device certificate per the CSIP profile, issued by the MCA."""
        key = _key()
        builder = (
            _base(self.mca_name, x509.Name([]), self._now)
            .add_extension(
                x509.SubjectAlternativeName([hardware_module_name(hw_type, serial.encode())]), critical=True
            )
            .add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(POLICY_DEVICE, None), x509.PolicyInformation(POLICY_TEST, None)]
                ),
                critical=True,
            )
            .add_extension(
                x509.KeyUsage(True, False, False, False, True, False, False, False, False), critical=True
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._mca_key.public_key()), critical=False
            )
        )
        return _issue(builder, key, self._mca_key)

    def server(self, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Issued:
        """A server certificate issued by the SERCA, with host names for loopback tests."""
        key = _key()
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = (
            _base(self.serca_name, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]), self._now)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.KeyUsage(True, False, False, False, True, False, False, False, False), critical=True
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._serca_key.public_key()),
                critical=False,
            )
        )
        return _issue(builder, key, self._serca_key)
