"""Typed 2030.5 resources and safe XML I/O.

Resources are the pydantic-xml models of ``envoy-schema`` (MIT). Two adjustments:

* CSIP-AUS elements are written in the namespace ``https://csipaus.org/ns`` (see
  :mod:`derms.adapters.ieee2030_5._namespace`).
* ``DERCurve``/``DERCurveList`` (IEEE 2030.5-2018 10.10.4.3), which envoy-schema does not
  model, are defined here in the same style.

Parsing never resolves entities, loads DTDs or touches the network, and any document with a
DOCTYPE is refused outright (billion-laughs and XXE payloads fail before model validation).
"""

from __future__ import annotations

import re
from typing import TypeVar

from envoy_schema.server.schema.sep2 import base as _base
from envoy_schema.server.schema.sep2 import primitive_types
from envoy_schema.server.schema.sep2.der import DERCapability as _EnvoyDERCapability
from envoy_schema.server.schema.sep2.der import DERControlBase
from envoy_schema.server.schema.sep2.der_control_types import (
    ActivePower,
    PowerFactorWithExcitation,
    ReactivePower,
)
from envoy_schema.server.schema.sep2.identification import IdentifiedObject, List
from lxml import etree
from pydantic import ValidationError
from pydantic_xml import BaseXmlModel, element

from derms.adapters.ieee2030_5._namespace import CSIPAUS_NS

SEP_XML = "application/sep+xml"
NS = "urn:ieee:std:2030.5:ns"
MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted; bigger bodies are refused with 400."""

M = TypeVar("M", bound=BaseXmlModel)

__all__ = [
    "CSIPAUS_NS",
    "ActivePower",
    "DERCapability",
    "DERControlBase",
    "PowerFactorWithExcitation",
    "ReactivePower",
]


class XmlRejected(ValueError):
    """A request body that is not acceptable 2030.5 XML; maps to HTTP 400."""


class DERCapability(_EnvoyDERCapability, tag="DERCapability"):
    """DERCapability with the CSIP-AUS ``doeModesSupported`` optional.

    envoy-schema requires it (CSIP-AUS), but a Rule 21 CSIP device running plain 2030.5-2018
    does not send it, and the 2018 XSD has no such element.
    """

    doeModesSupported: primitive_types.HexBinary8 | None = element(ns="csipaus", default=None)


class CurvePointXml(_base.BaseXmlModelWithNS, tag="CurveData"):
    """One curve point (2030.5-2018 CurveData); ``excitation`` only for power-factor curves."""

    excitation: bool | None = element(default=None)
    xvalue: int = element()
    yvalue: int = element()


class DERCurveXml(IdentifiedObject, tag="DERCurve"):
    """A DER curve (2030.5-2018 DERCurve): points scaled by ``xMultiplier``/``yMultiplier``."""

    autonomousVRefEnable: bool | None = element(default=None)
    autonomousVRefTimeConstant: int | None = element(default=None)
    creationTime: int = element()
    CurveData: list[CurvePointXml] = element(tag="CurveData")
    curveType: int = element()
    openLoopTms: int | None = element(default=None)
    rampDecTms: int | None = element(default=None)
    rampIncTms: int | None = element(default=None)
    rampPT1Tms: int | None = element(default=None)
    vRef: int | None = element(default=None)
    xMultiplier: int = element()
    yMultiplier: int = element()
    yRefType: int = element()


class DERCurveList(List, tag="DERCurveList"):
    DERCurve: list[DERCurveXml] | None = element(tag="DERCurve", default=None)


_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


def safe_root(body: bytes, *expected: str) -> etree._Element:
    """The root element of ``body`` if it is one of the 2030.5 elements ``expected``; else :class:`XmlRejected`.

    Size limit first, then DOCTYPE/ENTITY refused before parsing, then lxml with entities,
    DTDs and network off.
    """
    if len(body) > MAX_BODY_BYTES:
        raise XmlRejected(f"body of {len(body)} bytes exceeds the {MAX_BODY_BYTES} byte limit")
    if _DECLARATION.search(body):
        raise XmlRejected("DOCTYPE and entity declarations are not allowed")
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"malformed XML: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise XmlRejected("DOCTYPE is not allowed")
    if root.tag not in [f"{{{NS}}}{name}" for name in expected]:
        raise XmlRejected(f"expected <{'> or <'.join(expected)}> in {NS}, got {root.tag}")
    return root


def parse[M: BaseXmlModel](body: bytes, model: type[M]) -> M:
    """Parse a request body into ``model``; raises :class:`XmlRejected` with the reason."""
    expected = model.__xml_tag__ or model.__name__
    root = safe_root(body, expected)
    try:
        return model.from_xml_tree(root)
    except (ValidationError, ValueError, TypeError) as exc:
        raise XmlRejected(f"invalid {expected}: {exc}") from exc


def render(resource: BaseXmlModel) -> bytes:
    """Serialise a resource as 2030.5 XML (empty optional elements left out)."""
    return resource.to_xml(skip_empty=True, exclude_none=True)  # type: ignore[return-value]
