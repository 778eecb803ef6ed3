"""The wall clock every service here defaults to.

``time.time`` is looked up at each call, so a frozen clock in tests (freezegun) reaches
services that were built before it was frozen.
"""

import math
import time


def now() -> float:
    return time.time()


def to_millisecond(moment: float) -> float:
    """``moment`` rounded *down* to the millisecond, the precision revocation watermarks are
    compared at (``iat_ms``): rounding up could carry a sign-in made just before a
    revocation past it."""
    return math.floor(moment * 1000) / 1000
