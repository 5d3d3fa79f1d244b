"""Old keyword names: they warn, say the new name, and pass their value on under it."""

from __future__ import annotations

import pytest

from churnrisk._deprecation import renamed


@renamed(id_column="customer_col", as_of="cutoff")
def _ids(table: str, *, customer_col: str = "customer_id", cutoff: str | None = None) -> tuple:
    """Doc kept."""
    return table, customer_col, cutoff


def test_an_old_keyword_warns_and_is_passed_on():
    with pytest.warns(
        DeprecationWarning, match=r"_ids\(\): the keyword 'id_column' is deprecated; use 'customer_col'"
    ):
        assert _ids("t", id_column="CustomerID") == ("t", "CustomerID", None)
    with pytest.warns(DeprecationWarning, match="'as_of'.*'cutoff'"):
        assert _ids("t", as_of="2024-06-30") == ("t", "customer_id", "2024-06-30")


def test_the_new_names_do_not_warn_and_the_function_keeps_its_name():
    assert _ids("t", customer_col="id", cutoff="2024-06-30") == (
        "t",
        "id",
        "2024-06-30",
    )  # warnings are errors
    assert (_ids.__name__, _ids.__doc__) == ("_ids", "Doc kept.")


def test_both_names_at_once_are_refused():
    with pytest.raises(TypeError, match="both 'id_column' and its new name 'customer_col'"):
        _ids("t", id_column="a", customer_col="b")
