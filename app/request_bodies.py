"""How large a request body may be: ``MAX_CONTENT_LENGTH``, or a view's own ``body_limit``.

Werkzeug refuses a body that declares a larger Content-Length (413), but it stops reading a
chunked body (one sent without a Content-Length) at the limit and says nothing, and a form
or JSON cut there may still parse, short of its last parameters. A chunked body is therefore
read before the view, one byte past the limit, and refused (413) when it goes past it.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge


class BodyTooLarge(RequestEntityTooLarge):
    """The body went past the limit in force (others of Werkzeug's 413s are about a form's
    parts: too many, or one too large)."""


def body_limit(limit: int):
    """Give a view a body limit of its own (form fields included) instead of
    ``MAX_CONTENT_LENGTH``; applied before the view, so before anything reads the body."""
    def mark(view):
        view.body_limit = limit
        return view
    return mark


def init_request_bodies(app: Flask) -> None:
    app.before_request(_limit_the_body)


def _limit_the_body() -> None:
    own = getattr(current_app.view_functions.get(request.endpoint), "body_limit", None)
    if own is not None:
        request.max_content_length = request.max_form_memory_size = own
    if "chunked" not in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    limit = request.max_content_length
    if limit is None:
        return
    request.max_content_length = limit + 1  # read far enough to tell a cut body
    try:
        too_long = len(request.get_data(cache=True)) > limit
    except RequestEntityTooLarge:  # Werkzeug's own, should its stream tell
        too_long = True
    finally:
        request.max_content_length = limit
    if too_long:
        raise BodyTooLarge()


def too_large_message(error: RequestEntityTooLarge) -> str:
    """What a 413 says: the limit when the body went past it, else the form's fault."""
    limit, declared = request.max_content_length, request.content_length
    if limit and (isinstance(error, BodyTooLarge) or (declared or 0) > limit):
        return f"Request body too large (at most {limit // 1024} KiB)"
    return "Request body too large, or a form with too many parts"
