"""XML signatures (sign, verify, tamper, replay) and fingerprints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.pki import LabCa
from derms.adapters.openadr.oadr20b.signature import SignatureError, Signer, Verifier

NOW = datetime(2026, 7, 15, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    ca = LabCa(tmp_path_factory.mktemp("pki"), NOW)
    return ca, ca.issue("vtn", server=True), ca.issue("ven-a", server=False)


def signed_poll(issued, now=NOW):
    signer = Signer.from_files(str(issued.certfile), str(issued.keyfile))
    return signer.sign(codec.envelope(codec.poll("ven-a")), now)


def test_signed_payload_verifies_and_is_schema_valid(lab, validator):
    _, _, ven = lab
    payload = signed_poll(ven)
    assert validator.errors(payload) == []
    reparsed = codec.parse_payload(codec.serialize(payload)).root
    assert Verifier().verify(reparsed, ven.fingerprint, NOW + timedelta(seconds=1)) == ven.fingerprint


def test_tampered_wrong_signer_and_replay_are_refused(lab):
    _, vtn, ven = lab
    data = codec.serialize(signed_poll(ven))
    tampered = codec.parse_payload(data.replace(b">ven-a<", b">ven-b<")).root
    with pytest.raises(SignatureError, match="invalid signature"):
        Verifier().verify(tampered, None, NOW)
    with pytest.raises(SignatureError, match="another party"):
        Verifier().verify(codec.parse_payload(data).root, vtn.fingerprint, NOW)
    verifier = Verifier()
    verifier.verify(codec.parse_payload(data).root, None, NOW)
    with pytest.raises(SignatureError, match="replayed"):
        verifier.verify(codec.parse_payload(data).root, None, NOW)
    with pytest.raises(SignatureError, match="too old"):
        Verifier().verify(codec.parse_payload(data).root, None, NOW + timedelta(seconds=30))
    unsigned = codec.envelope(codec.poll("ven-a"))
    with pytest.raises(SignatureError, match="not signed"):
        Verifier().verify(etree.fromstring(codec.serialize(unsigned)), None, NOW)


def test_fingerprint_format(lab):
    _, vtn, _ = lab
    parts = vtn.fingerprint.split(":")
    assert len(parts) == 10 and all(len(p) == 2 and p == p.upper() for p in parts)
