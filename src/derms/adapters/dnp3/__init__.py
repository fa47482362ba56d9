"""DNP3 (IEEE 1815-2012) master adapter with the IEEE 1815.2 MESA-DER point map."""

from derms.adapters.dnp3.adapter import Dnp3Adapter, Dnp3Command, Dnp3Settings, create_adapter
from derms.adapters.dnp3.codec import AnalogOutput, AnalogVariation, Crob
from derms.adapters.dnp3.master import Dnp3Master, OperateMode

__all__ = [
    "AnalogOutput",
    "AnalogVariation",
    "Crob",
    "Dnp3Adapter",
    "Dnp3Command",
    "Dnp3Master",
    "Dnp3Settings",
    "OperateMode",
    "create_adapter",
]
