"""``python -m examples.resource_server``: serve the example on ``HOST``:``PORT``.

Environment: the settings of ``app.py`` (``SETTINGS``: ``IDP_ISSUER``, ``IDP_AUDIENCE``, the
IdP's Redis for revocation, the introspection client for API keys, ``TRUSTED_PROXIES``),
``HOST`` (default ``127.0.0.1``) and ``PORT`` (default ``8001``). One process with threads:
the example keeps its nodes in memory.
"""

from __future__ import annotations

import logging
import os
import sys

from werkzeug.serving import make_server

from idp.verifier import VerificationError, Verifier
from idp.verifier_flask import EXTENSION

from . import create_app


def _checks(verifier: Verifier) -> str:
    revocation = [name for name, on in (("the IdP's Redis", verifier.revocation is not None),
                                        ("introspection", verifier.introspect_access_tokens))
                  if on]
    keys = "through introspection" if verifier.introspection is not None else "refused"
    return (f"revocation: {' and '.join(revocation) or 'NOT CHECKED'}; "
            f"API keys: {keys}")


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app()
    except ValueError as error:
        sys.exit(f"resource server: {error}")
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8001"))
    issuer = app.config["IDP_ISSUER"]
    try:
        app.extensions[EXTENSION].refresh()
    except VerificationError:
        print(f"warning: {issuer} does not answer yet; its keys are fetched on the first "
              "request", file=sys.stderr, flush=True)
    server = make_server(host, port, app, threaded=True)
    print(f"resource server on http://{host}:{port}, trusting tokens of {issuer}; "
          f"{_checks(app.extensions[EXTENSION])}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
