"""Silent HiGHS instances.

HiGHS prints its banner on the C-level standard output when a process creates its first
``Highs`` object, before any option (``output_flag``) can be set. The headless demo and the
benchmarks print machine-readable JSON on standard output, so the first construction runs
with file descriptor 1 pointed at standard error: the banner stays visible, the JSON stays
parseable.
"""

from __future__ import annotations

import os
import sys
import threading

import highspy

_lock = threading.Lock()
_bannered = False


def new_highs() -> highspy.Highs:
    """A ``Highs`` instance with its log output off."""
    global _bannered
    with _lock:
        if _bannered:
            h = highspy.Highs()
        else:
            sys.stdout.flush()
            saved = os.dup(1)
            try:
                os.dup2(2, 1)
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            _bannered = True
    h.setOptionValue("output_flag", False)
    return h
