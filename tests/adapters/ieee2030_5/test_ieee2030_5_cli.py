"""``derms certs``: the test PKI follows the CSIP certificate profile and chains correctly."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID
from typer.testing import CliRunner

from derms.adapters.ieee2030_5.cli import cli
from derms.adapters.ieee2030_5.pki import HARDWARE_MODULE_NAME, INDEFINITE, POLICY_DEVICE


def test_certs_create_writes_a_csip_profile_pki(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["create", str(tmp_path), "--devices", "2"])
    assert result.exit_code == 0, result.output
    rows = result.output.strip().splitlines()[1:]
    assert len(rows) == 2
    pems = x509.load_pem_x509_certificates((tmp_path / "device-1.pem").read_bytes())
    device, mca = pems
    serca = x509.load_pem_x509_certificate((tmp_path / "serca.pem").read_bytes())
    assert isinstance(device.public_key(), ec.EllipticCurvePublicKey)
    assert device.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert device.subject == x509.Name([])
    assert device.not_valid_after_utc == INDEFINITE
    san = device.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san.critical and san.value[0].type_id == HARDWARE_MODULE_NAME  # type: ignore[attr-defined]
    policies = device.extensions.get_extension_for_oid(ExtensionOID.CERTIFICATE_POLICIES).value
    assert POLICY_DEVICE in [p.policy_identifier for p in policies]  # type: ignore[attr-defined]
    device.verify_directly_issued_by(mca)
    mca.verify_directly_issued_by(serca)
    lfdi = CliRunner().invoke(cli, ["lfdi", str(tmp_path / "device-1.pem")])
    assert lfdi.output.split("\t")[0] == rows[0].split("\t")[1]
