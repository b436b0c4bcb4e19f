"""The table cache of the context coder's table-coded passes."""

from __future__ import annotations

import numpy as np
import pytest

from medinr.entropy import context


def test_table_cache_that_fills_up_still_returns_every_table_of_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass whose new tables overflow the cache gets all its tables, also those cached before the overflow
    cleared it (a long bench worker once raised KeyError there)."""
    monkeypatch.setattr(context, "_TABLE_CACHE_SIZE", 8)
    monkeypatch.setattr(context, "_table_cache", {})
    context._tables(np.array([3, 4, 5]), 20)
    groups = np.array([3, 10, 11, 12, 13, 14, 15])  # 3 is cached; six more overflow the eight-table cache
    tables = context._tables(groups, 20)
    assert len(tables) == len(groups)
    assert set(context._table_cache) == {(int(g), 20) for g in groups}
