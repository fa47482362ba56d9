"""Adapters and translators by protocol name, built from configuration.

``DERMS_ADAPTERS`` lists the adapters `derms serve` runs (comma-separated protocol names);
``DERMS_ADAPTER_<NAME>`` may hold that adapter's settings as JSON (its package's settings
model validates them, so a typo is an error at start-up, not a silent default).
"""

from __future__ import annotations

import importlib
import inspect
import os
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine

from derms.adapters.base import Adapter, AdapterContext
from derms.bridge import Translator

ADAPTER_MODULES: dict[str, str] = {
    "sim": "derms.adapters.simulated.adapter",
    "ieee2030_5": "derms.adapters.ieee2030_5.adapter",
    "openadr": "derms.adapters.openadr.adapter",
    "ocpp": "derms.adapters.ocpp.adapter",
    "sunspec": "derms.adapters.sunspec.adapter",
    "dnp3": "derms.adapters.dnp3.adapter",
    "cta2045": "derms.adapters.cta2045.adapter",
}


def _translator_factories() -> dict[str, Callable[[Any, Any], Translator]]:
    """How each protocol's translator is made from (adapter settings, running adapter)."""
    from derms.bridge.cta2045 import Cta2045Translator
    from derms.bridge.dnp3 import Dnp3Translator
    from derms.bridge.ieee2030_5 import Ieee2030_5Translator
    from derms.bridge.ocpp import OcppTranslator
    from derms.bridge.openadr import OpenAdrTranslator
    from derms.bridge.simulated import SimulatedTranslator
    from derms.bridge.sunspec import SunSpecTranslator

    return {
        "sim": lambda _s, _a: SimulatedTranslator(),
        "ieee2030_5": lambda _s, _a: Ieee2030_5Translator(),
        "openadr": OpenAdrTranslator.for_adapter,
        "ocpp": lambda _s, _a: OcppTranslator(),
        "sunspec": lambda _s, a: SunSpecTranslator(a.device_map),  # scale factors read from the device
        "dnp3": lambda _s, _a: Dnp3Translator(),
        "cta2045": lambda _s, _a: Cta2045Translator(),
    }


def _check(name: str) -> None:
    if name not in ADAPTER_MODULES:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(sorted(ADAPTER_MODULES))}")


def settings_type(name: str) -> type[BaseModel]:
    """The settings model an adapter's ``create_adapter(context, settings)`` takes."""
    _check(name)
    factory = importlib.import_module(ADAPTER_MODULES[name]).create_adapter
    hint: Any = typing.get_type_hints(factory)["settings"]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def load_settings(name: str, settings: BaseModel | str | None = None) -> BaseModel:
    """The adapter's settings: the model given, JSON text, ``DERMS_ADAPTER_<NAME>``, or defaults."""
    if isinstance(settings, BaseModel):
        return settings
    text = settings or os.environ.get(f"DERMS_ADAPTER_{name.upper()}") or "{}"
    return settings_type(name).model_validate_json(text)


def build(
    name: str,
    context: AdapterContext,
    settings: BaseModel | str | None = None,
    *,
    engine: Engine | None = None,
) -> tuple[Adapter, Translator]:
    """Create the adapter for ``name`` and the translator that feeds it. Adapters that keep
    durable state (their factory takes ``engine``) get the platform's database."""
    _check(name)
    config = load_settings(name, settings)
    factory = importlib.import_module(ADAPTER_MODULES[name]).create_adapter
    extra = (
        {"engine": engine} if engine is not None and "engine" in inspect.signature(factory).parameters else {}
    )
    adapter = factory(context, config, **extra)
    return adapter, _translator_factories()[name](config, adapter)
