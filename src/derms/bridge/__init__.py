"""The protocol bridge: one DER-level setpoint becomes the native command of the DER's protocol.

Each protocol contributes a :class:`~derms.bridge.base.Translator` (in ``derms.bridge.<protocol>``);
:class:`~derms.bridge.base.Bridge` first checks the setpoint against the device's limits
(:func:`~derms.bridge.limits.check_limits`) and refuses it with a clear reason, then asks
the translator, which reports any precision lost on the way.
"""

from derms.bridge.base import Bridge, Translator
from derms.bridge.limits import check_limits

__all__ = ["Bridge", "Translator", "check_limits"]
