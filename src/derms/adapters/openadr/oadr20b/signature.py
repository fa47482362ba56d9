"""XML signatures of 2.0b payloads (OpenADR 2.0b profile, section 10 "Security").

A signed payload carries a detached ``ds:Signature`` before ``oadrSignedObject`` with two
references: ``#oadrSignedObject`` and the ``dsp:ReplayProtect`` signature property (timestamp
and nonce), canonicalised with C14N 1.0, RSA- or ECDSA-SHA256 after the key type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree
from signxml import SignatureConfiguration, SignatureMethod, XMLSigner, XMLVerifier, methods
from signxml.exceptions import InvalidInput, InvalidSignature

from derms.adapters.openadr.oadr20b.security import fingerprint_pem
from derms.adapters.openadr.oadr20b.xmlutil import NS, fmt_datetime, parse_datetime, qname

C14N_1_0 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"


class SignatureError(ValueError):
    """The payload's signature is missing, invalid, from the wrong certificate or replayed."""


@dataclass(slots=True)
class Signer:
    cert_pem: bytes
    key_pem: bytes
    _key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(init=False)

    def __post_init__(self) -> None:
        key = load_pem_private_key(self.key_pem, None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("OpenADR signatures need an RSA or ECDSA key")
        self._key = key

    @classmethod
    def from_files(cls, certfile: str, keyfile: str) -> Signer:
        return cls(Path(certfile).read_bytes(), Path(keyfile).read_bytes())

    def sign(self, payload: etree._Element, now: datetime | None = None) -> etree._Element:
        """Insert a detached signature into ``oadrPayload`` and return it."""
        signed = payload.find("oadr:oadrSignedObject", NS)
        if signed is None:
            raise ValueError("not an oadrPayload")
        algorithm = (
            SignatureMethod.ECDSA_SHA256
            if isinstance(self._key, ec.EllipticCurvePrivateKey)
            else SignatureMethod.RSA_SHA256
        )
        signer = XMLSigner(method=methods.detached, signature_algorithm=algorithm, c14n_algorithm=C14N_1_0)
        signer.namespaces["oadr"] = NS["oadr"]
        replay = etree.Element(
            qname("dsp:ReplayProtect"),
            nsmap={"dsp": NS["dsp"]},
            Id="replayProtect",
            Target="#oadrSignedObject",
        )
        stamp = etree.SubElement(replay, qname("dsp:timestamp"))
        stamp.text = fmt_datetime(now or datetime.now().astimezone())
        nonce = etree.SubElement(replay, qname("dsp:nonce"))
        nonce.text = uuid.uuid4().hex
        signature = signer.sign(
            signed,
            key=self._key,
            cert=self.cert_pem.decode(),
            reference_uri="#oadrSignedObject",
            signature_properties=replay,
        )
        payload.insert(0, signature)
        return payload


class Verifier:
    """Checks signature, signer fingerprint and replay protection (5 s window by default)."""

    def __init__(self, max_age: timedelta = timedelta(seconds=5)) -> None:
        self.max_age = max_age
        self._seen: dict[tuple[str, str], datetime] = {}

    def verify(self, payload: etree._Element, expected_fingerprint: str | None, now: datetime) -> str:
        """Check the payload's signature; returns the signer certificate's OpenADR fingerprint."""
        cert_text = payload.findtext(".//ds:X509Certificate", namespaces=NS)
        if not cert_text:
            raise SignatureError("payload is not signed")
        pem = ("-----BEGIN CERTIFICATE-----\n" + cert_text.strip() + "\n-----END CERTIFICATE-----\n").encode()
        try:
            x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise SignatureError("signature certificate is not readable") from exc
        signer = fingerprint_pem(pem)
        if expected_fingerprint is not None and signer.upper() != expected_fingerprint.upper():
            raise SignatureError("payload signed with a certificate of another party")
        try:
            XMLVerifier().verify(
                payload,
                x509_cert=pem.decode(),
                expect_config=SignatureConfiguration(expect_references=2, verification_time=now),
            )
        except (InvalidSignature, InvalidInput) as exc:
            raise SignatureError(f"invalid signature: {exc}") from exc
        stamp = payload.findtext(".//dsp:ReplayProtect/dsp:timestamp", namespaces=NS)
        nonce = payload.findtext(".//dsp:ReplayProtect/dsp:nonce", namespaces=NS)
        if not stamp or not nonce:
            raise SignatureError("missing ReplayProtect timestamp or nonce")
        when = parse_datetime(stamp)
        if when < now - self.max_age:
            raise SignatureError("signature too old (replay protection)")
        key = (stamp, nonce)
        if key in self._seen:
            raise SignatureError("replayed nonce")
        self._seen = {k: v for k, v in self._seen.items() if v >= now - self.max_age}
        self._seen[key] = when
        return signer


_SIGNATURE = qname("ds:Signature")


def is_signed(payload: etree._Element) -> bool:
    return payload.find(_SIGNATURE) is not None
