"""SunSpec Modbus master on pymodbus, with point maps from pysunspec2's model definitions."""

from derms.adapters.sunspec.adapter import SunSpecAdapter, create_adapter, parse_address
from derms.adapters.sunspec.client import DeviceError, SunSpecClient
from derms.adapters.sunspec.commands import PointWrite, SunSpecWrite
from derms.adapters.sunspec.models import ModelBlock, SunSpecError, decode_model, model_def
from derms.adapters.sunspec.settings import SunSpecSettings

__all__ = [
    "DeviceError",
    "ModelBlock",
    "PointWrite",
    "SunSpecAdapter",
    "SunSpecClient",
    "SunSpecError",
    "SunSpecSettings",
    "SunSpecWrite",
    "create_adapter",
    "decode_model",
    "model_def",
    "parse_address",
]
