"""The audit trail contract: who did what, to what, and how it ended.

The app records each event durably and logs it (``app/audit.py``); services here only call
``audit(action, outcome, actor=..., target=..., **details)``. Details never hold secrets.
"""

from __future__ import annotations

from typing import Protocol


class Audit(Protocol):
    def __call__(self, action: str, outcome: str, *, actor: str | None = None,
                 target: str | None = None, **details) -> None: ...
