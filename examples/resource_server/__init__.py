"""A reference resource server: Infracast's nodes API guarded by ``idp.verifier``.

``python -m examples.resource_server`` (or ``make resource-server``) serves it; see ``app.py``.
"""

from .app import create_app

__all__ = ["create_app"]
