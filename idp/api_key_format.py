"""What an ``ic_live_`` API key looks like: its prefix and its length.

Standard library only, so the resource servers' verifier (``idp.verifier``) refuses a
malformed key locally, without asking the IdP, by the same rule the IdP's introspection
endpoint uses to tell an API key from an access token. Everything else about API keys is
in ``idp.api_keys``.
"""

from __future__ import annotations

from typing import Any

PREFIX = "ic_live_"
# ours are PREFIX + 43 characters (32 random bytes, URL-safe base64); some room either side
MIN_LENGTH, MAX_LENGTH = 40, 100


def looks_like_api_key(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX) \
        and MIN_LENGTH <= len(value) <= MAX_LENGTH
