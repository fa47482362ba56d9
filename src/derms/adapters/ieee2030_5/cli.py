"""``derms certs``: a test PKI for IEEE 2030.5 (SERCA, MCA, server and device certificates)."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from derms.adapters.ieee2030_5.identity import lfdi_from_cert_der, sfdi_from_lfdi
from derms.adapters.ieee2030_5.pki import TestPki

cli = typer.Typer(help="IEEE 2030.5 test certificates (CSIP certificate profile).", no_args_is_help=True)


@cli.command("create")
def create(
    directory: Annotated[Path, typer.Argument(help="where to write the PEM files")],
    devices: Annotated[int, typer.Option(min=0, help="number of device certificates")] = 2,
    hosts: Annotated[
        str, typer.Option(help="server host names / IPs, comma separated")
    ] = "localhost,127.0.0.1",
    prefix: Annotated[str, typer.Option(help="device file and serial prefix")] = "device",
) -> None:
    """Create serca.pem, server.pem/.key and device-N.pem/.key (chain included) in DIRECTORY."""
    pki = TestPki(datetime.now(UTC))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "serca.pem").write_bytes(pki.serca.cert_pem)
    (directory / "mca.pem").write_bytes(pki.mca.cert_pem)
    pki.server(tuple(h.strip() for h in hosts.split(",") if h.strip())).write(directory, "server")
    typer.echo("file\tLFDI\tSFDI")
    for n in range(1, devices + 1):
        issued = pki.device(f"{prefix.upper()}-{n:05d}")
        issued.write(directory, f"{prefix}-{n}", chain=(pki.mca,))
        typer.echo(f"{prefix}-{n}.pem\t{issued.lfdi}\t{issued.sfdi}")


@cli.command("lfdi")
def lfdi(cert: Annotated[Path, typer.Argument(exists=True, readable=True)]) -> None:
    """Print the LFDI and SFDI (IEEE 2030.5-2018 6.3) of the first certificate in CERT."""
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
    value = lfdi_from_cert_der(der)
    typer.echo(f"{value}\t{sfdi_from_lfdi(value)}")
