"""gunicorn.conf.py's settings for the reference app (bench/reference_app.py): the same
workers, worker class, threads and keep-alive as the service's row, without its hooks
(they bootstrap the service's database and keys)."""

import runpy
from pathlib import Path

_SERVICE = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))
globals().update({name: value for name, value in _SERVICE.items()
                  if not name.startswith("_") and not callable(value)})
