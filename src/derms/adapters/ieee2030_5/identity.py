"""Device identity from certificates: LFDI and SFDI (IEEE 2030.5-2018 clause 6.3.4)."""

from __future__ import annotations

import hashlib


def lfdi_from_cert_der(cert_der: bytes) -> str:
    """Long-form device identifier: the first 160 bits of SHA-256 over the DER certificate.

    IEEE 2030.5-2018 6.3.4: 40 hexadecimal characters, upper case as the standard prints it.
    """
    return hashlib.sha256(cert_der).hexdigest()[:40].upper()


def sfdi_from_lfdi(lfdi: str) -> int:
    """Short-form device identifier (IEEE 2030.5-2018 6.3.3).

    The first 36 bits of the LFDI as a decimal number, times ten, plus a check digit that
    makes the sum of all decimal digits divisible by ten.
    """
    if len(lfdi) < 9:
        raise ValueError("LFDI must have at least 9 hex digits")
    base = int(lfdi[:9], 16)
    return base * 10 + check_digit(base)


def check_digit(value: int) -> int:
    """Digit that makes the digit sum of ``value * 10 + digit`` divisible by 10 (6.3.3)."""
    return (10 - sum(int(d) for d in str(value)) % 10) % 10


def normalise_lfdi(lfdi: str) -> str:
    """Upper-case 40-hex LFDI; raises ``ValueError`` for anything else."""
    text = lfdi.strip().upper()
    if len(text) != 40 or any(c not in "0123456789ABCDEF" for c in text):
        raise ValueError(f"LFDI must be 40 hexadecimal characters, got {lfdi!r}")
    return text


def registration_pin(seed: int) -> int:
    """A registration PIN (IEEE 2030.5-2018 6.3.4.2): five digits and a check digit."""
    base = seed % 100_000
    return base * 10 + check_digit(base)
