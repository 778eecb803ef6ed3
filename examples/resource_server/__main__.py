"""``python -m examples.resource_server``: serve the example on ``HOST``:``PORT``.

Environment: ``IDP_ISSUER`` (default ``http://127.0.0.1:8000``), ``IDP_AUDIENCE``
(default ``infracast-api``), ``HOST`` (default ``127.0.0.1``), ``PORT`` (default ``8001``).
One process with threads: the example keeps its nodes in memory.
"""

from __future__ import annotations

import logging
import os
import sys

from werkzeug.serving import make_server

from idp.verifier import VerificationError
from idp.verifier_flask import EXTENSION

from . import create_app


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app()
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8001"))
    issuer = app.config["IDP_ISSUER"]
    try:
        app.extensions[EXTENSION].refresh()
    except VerificationError:
        print(f"warning: {issuer} does not answer yet; its keys are fetched on the first "
              "request", file=sys.stderr, flush=True)
    server = make_server(host, port, app, threaded=True)
    print(f"resource server on http://{host}:{port}, trusting tokens of {issuer}",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
