"""Finding the key-encryption key: the environment, a file, or one made on first start."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from keys.sealing import generate_kek, parse_kek

from .config import ConfigError

log = logging.getLogger("infracast.startup")


def resolve_kek(config: dict, instance_path: str) -> bytes:
    if config.get("SECRET_KEY_VALUE"):
        return _parse(str(config["SECRET_KEY_VALUE"]), "IDP_SECRET_KEY")
    if config.get("SECRET_KEY_FILE"):
        path = Path(str(config["SECRET_KEY_FILE"]))
        try:
            return _parse(path.read_text(), "IDP_SECRET_KEY_FILE")
        except OSError as error:
            raise ConfigError(f"IDP_SECRET_KEY_FILE cannot be read: {error.strerror}") from None
    return _parse(_instance_key(Path(instance_path) / "secret.key"), "the instance secret key")


def _parse(text: str, source: str) -> bytes:
    try:
        return parse_kek(text)
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None


def _instance_key(path: Path) -> str:
    """Read the instance key, creating it atomically if absent (workers may race here)."""
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_kek())
    try:
        os.link(temporary, path)  # atomic: exactly one racer creates the key
        log.warning("generated a new key-encryption key", extra={"fields": {
            "path": str(path),
            "advice": "set IDP_SECRET_KEY or IDP_SECRET_KEY_FILE in production"}})
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text()
