"""Plain-words feature descriptions never fail, whatever a customer's values are."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from churnrisk.features import explain, feature_columns

COLUMNS = [c for c in feature_columns() if not c.startswith("customer_")]
VALUES = st.one_of(
    st.just(0.0),
    st.just(math.nan),
    st.just(math.inf),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(row=st.fixed_dictionaries({c: VALUES for c in COLUMNS}), column=st.sampled_from(COLUMNS))
def test_explain_gives_text_for_any_values(row, column):
    text = explain(column, row)
    assert isinstance(text, str) and text
    assert "nan" not in text.lower().split()


def test_explain_a_ratio_of_zero():
    # A basket-size ratio of 0 cannot be worked back to the earlier value; it must still read.
    assert explain("purchases_aov_30d", {"purchases_aov_30d": 0.0, "purchases_monetary_30d": 0.0})
