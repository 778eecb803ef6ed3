"""The wall clock every service here defaults to.

``time.time`` is looked up at each call, so a frozen clock in tests (freezegun) reaches
services that were built before it was frozen.
"""

import time


def now() -> float:
    return time.time()
