"""Cursor pagination shared by every list call of the service layer.

A list call asks its repository for one row more than the page size; if that extra row
exists there is a next page, and its cursor points after the last item returned. How a
cursor encodes its position (an id, or a timestamp and an id) belongs to each list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from shardvault.service.errors import ValidationError
from shardvault.service.views import Page

MAX_PAGE_SIZE = 200
"""The most items one list call returns."""

_Row = TypeVar("_Row")
_Item = TypeVar("_Item")


def page_size(limit: int) -> int:
    """Check a requested page size.

    Raises:
        ValidationError: ``limit`` is not between 1 and :data:`MAX_PAGE_SIZE`.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
    return limit


def page_of(
    rows: Sequence[_Row],
    size: int,
    view: Callable[[_Row], _Item],
    cursor_after: Callable[[_Item], str],
) -> Page[_Item]:
    """The page of ``size`` items from ``rows`` (fetched with ``size + 1``), with the cursor
    of the next page when the extra row shows there is one."""
    items = tuple(view(row) for row in rows[:size])
    return Page(items, cursor_after(items[-1]) if len(rows) > size else None)
