"""Resource paths of the server (one place, so routes, mappers and tests agree)."""

from __future__ import annotations

DCAP = "/dcap"
TIME = "/tm"
EDEV_LIST = "/edev"
MUP_LIST = "/mup"
RSPS_LIST = "/rsps"
RESPONSE_SET = "/rsps/1"
RESPONSES = "/rsps/1/rsp"
DER_ID = 1
"""Each EndDevice exposes one DER (CSIP 5.2.2: one DER per EndDevice)."""


def edev(e: int) -> str:
    return f"/edev/{e}"


def reg(e: int) -> str:
    return f"/edev/{e}/reg"


def fsa_list(e: int) -> str:
    return f"/edev/{e}/fsa"


def fsa(e: int) -> str:
    return f"/edev/{e}/fsa/1"


def derp_list(e: int) -> str:
    return f"/edev/{e}/derp"


def derp(e: int, p: int) -> str:
    return f"/edev/{e}/derp/{p}"


def derc_list(e: int, p: int) -> str:
    return f"/edev/{e}/derp/{p}/derc"


def derc(e: int, p: int, c: int) -> str:
    return f"/edev/{e}/derp/{p}/derc/{c}"


def actderc(e: int, p: int) -> str:
    return f"/edev/{e}/derp/{p}/actderc"


def dderc(e: int, p: int) -> str:
    return f"/edev/{e}/derp/{p}/dderc"


def curve_list(e: int, p: int) -> str:
    return f"/edev/{e}/derp/{p}/dc"


def curve(e: int, p: int, c: int) -> str:
    return f"/edev/{e}/derp/{p}/dc/{c}"


def der_list(e: int) -> str:
    return f"/edev/{e}/der"


def der(e: int) -> str:
    return f"/edev/{e}/der/{DER_ID}"


def der_part(e: int, part: str) -> str:
    return f"/edev/{e}/der/{DER_ID}/{part}"


def lel(e: int) -> str:
    return f"/edev/{e}/lel"


def sub_list(e: int) -> str:
    return f"/edev/{e}/sub"


def sub(e: int, s: int) -> str:
    return f"/edev/{e}/sub/{s}"


def mup(m: int) -> str:
    return f"/mup/{m}"
