"""gunicorn.conf.py's settings for the reference app (bench/reference_app.py): the same
workers, worker class, threads and keep-alive as the service's row, without its hooks
(they bootstrap the service's database and keys)."""

import inspect
import runpy
from pathlib import Path

from gunicorn.config import KNOWN_SETTINGS

_SERVICE = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))
_SETTINGS = {setting.name for setting in KNOWN_SETTINGS}
# every gunicorn setting it makes, except the server hooks (functions)
globals().update({name: value for name, value in _SERVICE.items()
                  if name in _SETTINGS and not inspect.isfunction(value)})
