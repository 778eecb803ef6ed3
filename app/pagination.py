"""Keyset pagination for admin lists: ``?limit=`` and an opaque ``?cursor=``.

The cursor is the last sort key of the previous page (URL-safe base64), so pages stay
stable while rows are added and no OFFSET scan grows with the page number.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import sqlalchemy as sa
from flask import request

from idp.errors import InvalidRequest

from .extensions import db

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None

    def body(self, render) -> dict:
        return {"items": [render(item) for item in self.items], "next_cursor": self.next_cursor}


def _page_arguments() -> tuple[int, str | None]:
    raw_limit = request.args.get("limit", str(DEFAULT_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 3) \
            or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise InvalidRequest(f"'limit' must be a whole number from 1 to {MAX_LIMIT}")
    cursor = request.args.get("cursor")
    if cursor is None:
        return int(raw_limit), None
    try:
        after = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                 validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        after = None
    if after is None or "\x00" in after:  # no sort key of ours holds a NUL
        raise InvalidRequest("'cursor' is not a cursor this server gave out")
    return int(raw_limit), after


def paginate(query: sa.Select, sort_column) -> Page:
    """One page of ``query`` ordered by the unique ``sort_column``."""
    limit, after = _page_arguments()
    if after is not None:
        query = query.where(sort_column > after)
    rows = db.session.execute(query.order_by(sort_column).limit(limit + 1)).scalars().all()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = None
    if more:
        last = getattr(rows[-1], sort_column.key)
        cursor = base64.urlsafe_b64encode(str(last).encode()).decode().rstrip("=")
    return Page(rows, cursor)
