"""Reading JSON request bodies under ``/api/v1``: every bad input is a 400 naming the field."""

from __future__ import annotations

import json

from flask import request

from idp.errors import InvalidRequest

_MISSING = object()
_TYPE_NAMES = {str: "a string", bool: "a boolean", int: "an integer", list: "an array",
               dict: "an object"}


def json_body() -> dict:
    if not request.is_json:
        raise InvalidRequest("Content-Type must be application/json")
    try:
        body = request.get_json(silent=True)
        # a lone surrogate escape (\ud800) parses, but is no text: nothing downstream could
        # hash, store or compare it
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply") from None
    except UnicodeEncodeError:
        raise InvalidRequest("The request body holds a string that is not valid Unicode") from None
    if body is None:
        raise InvalidRequest("The request body is not valid JSON")
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object")
    # nor a NUL (\u0000), which no PostgreSQL text can hold: refused here for every field,
    # named, rather than by the database as a bare "Invalid request"
    for name, value in body.items():
        try:
            nul = _holds_nul(name) or _holds_nul(value)
        except RecursionError:  # within json.dumps's depth, not within this walk's
            raise InvalidRequest("The request body is nested too deeply") from None
        if nul:
            raise InvalidRequest(f"'{name}' must not hold a NUL character")
    return body


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def optional_json_body() -> dict:
    """``json_body()`` when the request has a body, else ``{}``. Asked of the body itself: a
    chunked request (HTTP/1.1 ``Transfer-Encoding: chunked``) declares no Content-Length."""
    return json_body() if request.get_data(cache=True) else {}


def field(body: dict, name: str, kind: type = str, *, required: bool = True,
          default=None, max_length: int | None = 1024):
    """``body[name]`` checked to be of ``kind``; strings must be non-empty."""
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise InvalidRequest(f"'{name}' is required")
        return default
    # bool is an int in Python; JSON true is not a number here
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidRequest(f"'{name}' must be {_TYPE_NAMES.get(kind, kind.__name__)}")
    if kind is str:
        if not value.strip():
            raise InvalidRequest(f"'{name}' must not be empty")
        if max_length is not None and len(value) > max_length:
            raise InvalidRequest(f"'{name}' is too long (at most {max_length} characters)")
    return value
