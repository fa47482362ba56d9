"""Point envoy-schema's ``csipaus`` prefix at ``https://csipaus.org/ns`` before its models load.

The published CSIP-AUS XSD (``csipaus-ext.xsd``) and independent clients use that namespace;
envoy-schema defaults to ``https://csipaus.org/ns/v1.3``. pydantic-xml fixes a model's
namespaces when the class is created, so this must run before any envoy-schema DER model is
imported; it is the first import of :mod:`derms.adapters.ieee2030_5`.
"""

from __future__ import annotations

import sys

from envoy_schema.server.schema.sep2 import base

CSIPAUS_NS = "https://csipaus.org/ns"

if "envoy_schema.server.schema.sep2.der" in sys.modules and base.nsmap.get("csipaus") != CSIPAUS_NS:
    raise ImportError("import derms.adapters.ieee2030_5 before envoy_schema's DER models")
base.nsmap["csipaus"] = CSIPAUS_NS
