"""Per-customer value over a horizon: expected orders, expected revenue and P(alive) (DESIGN §5).

Order data have two models, validated out of time on the same holdout:

* ``"bgnbd"``: the MBG/NBD repeat-buying model (one-time buyers may already be gone, unlike plain
  BG/NBD) for the number of purchase days, times the Gamma-Gamma expected spend per purchase day;
* ``"features"``: gradient boosting with a Poisson loss on the point-in-time features (plus the
  BG/NBD forecast as one of them), trained on stacked cutoffs to predict the next horizon's revenue.

The holdout is the horizon that ends at ``cutoff``: both models are fitted on what was known at
``cutoff - horizon`` and compared with the revenue that followed, next to the anchor "last period's
revenue" (the revenue of the horizon before). ``method="auto"`` keeps the model with the lower root
mean squared error (not the absolute error: most customers' median revenue is 0, and the absolute
error rewards predicting 0) and refits it at ``cutoff``. Subscription data: ``expected_revenue = MRR x
expected active months``, the months from the Kaplan-Meier curve of relationship lengths, conditional
on each customer's tenure (:func:`churnrisk.horizons.kaplan_meier`), checked on the same kind of
holdout beside "last period's revenue" and "MRR with no churn".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from churnrisk._deprecation import renamed
from churnrisk.errors import ChurnriskError

__all__ = ["VALUE_METHODS", "ValueForecast", "predict_value"]

ID = "customer_id"
VALUE_METHODS = ("auto", "bgnbd", "features")
MONTH_DAYS = 365.25 / 12
WEEK_DAYS = 7.0
#: Stacked cutoffs (30 days apart) the feature model learns from, the latest first.
TRAINING_CUTOFFS = 12


@dataclass
class ValueForecast:
    """What :func:`predict_value` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per customer: ``customer_id, expected_orders, expected_revenue, p_alive,
        p_alive_end`` (order data; ``p_alive_end`` = P(alive at cutoff + horizon)) or
        ``customer_id, mrr, expected_months, expected_revenue, p_active_end`` (subscriptions), and
        ``expected_margin`` when a margin is given.
    method : str
        The model behind ``expected_revenue``: ``bgnbd``, ``features`` or ``survival``.
    evaluation : pandas.DataFrame or None
        The out-of-time check: one row per model and anchor, ``customers, mae, rmse,
        predicted_total, actual_total``; None when the history is too short for a holdout.
    """

    table: pd.DataFrame
    method: str
    evaluation: pd.DataFrame | None


@renamed(as_of="cutoff")
def predict_value(
    store: Any,
    *,
    horizon: int,
    cutoff: Any = None,
    margin: float | None = None,
    method: str = "auto",
    definition: str | None = None,
    random_state: int | None = 0,
) -> ValueForecast:
    """Expected orders and revenue of every customer over the ``horizon`` days after ``cutoff``.

    Order data: every customer with an order up to ``cutoff``; subscription data: every customer
    subscribed at ``cutoff``. Nothing after ``cutoff`` is used, for the forecast or its holdout.

    Parameters
    ----------
    store : EventStore
        Order data (``orders``) or subscription data (``subscriptions``).
    horizon : int
        Days ahead.
    cutoff : date-like, optional
        The day of the forecast (default: the last event in the store). Only events up to it are used.
    margin : float, optional
        Gross margin in [0, 1]: adds ``expected_margin = expected_revenue x margin``.
    method : {"auto", "bgnbd", "features"}
        Order data: the model of ``expected_revenue``; ``auto`` picks the one with the lower holdout
        error. Ignored for subscription data.
    definition : {"inactivity", "subscription"}, optional
        Which kind of data to value (default: subscription when there is a subscriptions table).
    random_state : int, optional
        Seed of the feature model: the same data and seed give the same values.
    """
    from churnrisk.features._build import to_cutoff
    from churnrisk.labels import data_end
    from churnrisk.spells import resolve_definition

    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ChurnriskError(
            f"The 'horizon' parameter must be a positive whole number of days. Got {horizon!r}."
        )
    if margin is not None and not 0 <= margin <= 1:
        raise ChurnriskError(f"The 'margin' parameter must be a fraction in [0, 1]. Got {margin!r} instead.")
    if method not in VALUE_METHODS:
        raise ChurnriskError(
            f"The 'method' parameter must be one of {VALUE_METHODS}. Got {method!r} instead."
        )
    cutoff = data_end(store) if cutoff is None else to_cutoff(cutoff, "cutoff")
    days = int(horizon)
    if resolve_definition(store, definition) == "subscription":
        forecast = _subscription_forecast(store, cutoff, days)
    else:
        forecast = _order_forecast(store, cutoff, days, method, random_state)
    if margin is not None:
        forecast.table["expected_margin"] = forecast.table["expected_revenue"] * margin
    return forecast


# --- order data ------------------------------------------------------------------------------------


def _order_forecast(
    store: Any, cutoff: datetime, days: int, method: str, random_state: int | None
) -> ValueForecast:
    if "orders" not in store:
        raise ChurnriskError("per-customer value of order data needs an 'orders' table.")
    models = _OrderValue(store, days, random_state)
    evaluation = models.holdout(cutoff - timedelta(days=days))
    if method == "auto":
        method = _better(evaluation)
    table = models.bgnbd(cutoff).reset_index()
    if method == "features":
        table["expected_revenue"] = models.feature_revenue(cutoff).reindex(table[ID]).to_numpy()
    return ValueForecast(table, method, evaluation)


def _better(evaluation: pd.DataFrame | None) -> str:
    """The order-data model with the lower holdout error (BG/NBD when there is no holdout)."""
    if evaluation is None or "features" not in evaluation.index:
        return "bgnbd"
    # squared error, not absolute: the median revenue of most customers is 0, and MAE would
    # reward a model that predicts 0 for them over one that predicts their expected revenue
    return str(evaluation.loc[["bgnbd", "features"], "rmse"].idxmin())


class _OrderValue:
    """The order-data value models at any cutoff, each fitted once per cutoff (the holdout and the
    final forecast share most of their training cutoffs)."""

    def __init__(self, store: Any, days: int, random_state: int | None) -> None:
        self.store, self.orders, self.days, self.random_state = store, store["orders"], days, random_state
        first = self.orders["ordered_at"].min()
        if first is None:
            raise ChurnriskError("the orders table is empty: there is nothing to value.")
        self.first: datetime = first  # type: ignore[assignment]
        self._cache: dict[tuple[str, datetime], pd.DataFrame] = {}

    def bgnbd(self, cutoff: datetime) -> pd.DataFrame:
        """MBG/NBD purchase days and P(alive), times the Gamma-Gamma spend, per customer with an order."""
        key = ("bgnbd", cutoff)
        if key not in self._cache:
            self._cache[key] = _bgnbd_table(self.orders, cutoff, self.days).set_index(ID)
        return self._cache[key]

    def rows(self, cutoff: datetime) -> pd.DataFrame:
        """Features at ``cutoff`` of the customers with an order by then, with the BG/NBD forecast."""
        from churnrisk.features import build_features

        key = ("rows", cutoff)
        if key not in self._cache:
            bgnbd = self.bgnbd(cutoff)
            extra = bgnbd[["expected_revenue", "p_alive"]].add_prefix("value_bgnbd_")
            self._cache[key] = build_features(self.store, cutoff).join(extra, how="inner")
        return self._cache[key]

    def revenue(self, start: datetime, ids: pd.Index) -> pd.Series:
        """Order revenue of ``ids`` in ``(start, start + days]``, 0 without orders."""
        inside = self.orders.filter(
            (pl.col("ordered_at") > start) & (pl.col("ordered_at") <= start + timedelta(days=self.days))
        )
        totals = inside.group_by(ID).agg(pl.col("amount").sum().cast(pl.Float64)).to_pandas()
        return totals.set_index(ID)["amount"].reindex(ids, fill_value=0.0)

    def feature_revenue(self, cutoff: datetime) -> pd.Series:
        """Next-horizon revenue from point-in-time features, learned on earlier stacked cutoffs.

        The training cutoffs are 30 days apart, the latest ``days`` before ``cutoff`` (its revenue
        is known by then): nothing after ``cutoff`` is used.
        """
        from churnrisk.model import input_schema, prepare_features

        last = cutoff - timedelta(days=self.days)
        # a cutoff needs a horizon of history before it for the features and BG/NBD to see anything
        earliest = self.first + timedelta(days=self.days)
        starts = [c for k in range(TRAINING_CUTOFFS) if (c := last - timedelta(days=30 * k)) >= earliest]
        if not starts:
            raise ChurnriskError(
                f"the feature value model needs orders before {last:%Y-%m-%d} to learn from. "
                "Suggestion: use method='bgnbd' or a shorter horizon."
            )
        rows = pd.concat([self.rows(c) for c in starts])
        target = np.concatenate([self.revenue(c, self.rows(c).index).to_numpy() for c in starts])
        rows = rows.dropna(axis=1, how="all")  # a signal never seen yet cannot be learned from
        schema = input_schema(rows)
        regressor = _regressor(schema, self.random_state).fit(prepare_features(rows, schema), target)
        now = self.rows(cutoff)
        predicted = regressor.predict(prepare_features(now, schema))
        return pd.Series(predicted, index=now.index, name="expected_revenue")

    def holdout(self, holdout: datetime) -> pd.DataFrame | None:
        """:meth:`evaluation`, or None when there is too little history before ``holdout`` to fit on."""
        if holdout <= self.first:
            return None
        try:
            return self.evaluation(holdout)
        except ChurnriskError:  # e.g. no repeat customer yet for Gamma-Gamma: no holdout, not an error
            return None

    def evaluation(self, holdout: datetime) -> pd.DataFrame:
        """Each model fitted at ``holdout`` against the revenue of the next ``days``, same customers.

        The feature model is left out when there is no history before ``holdout`` to learn from.
        """
        known = self.bgnbd(holdout)
        predictions = {"bgnbd": known["expected_revenue"]}
        if holdout - timedelta(days=2 * self.days) >= self.first:
            predictions["features"] = self.feature_revenue(holdout).reindex(known.index)
        predictions["last_period"] = self.revenue(holdout - timedelta(days=self.days), known.index)
        return value_errors(self.revenue(holdout, known.index), predictions)


def _bgnbd_table(orders: pl.DataFrame, cutoff: datetime, days: int) -> pd.DataFrame:
    """MBG/NBD purchase days and P(alive), times the Gamma-Gamma spend, for customers with an order."""
    from churnrisk.bgnbd import BGNBD, rfm_summary
    from churnrisk.gammagamma import GammaGamma

    rfm = rfm_summary(orders, cutoff, monetary_col="amount")
    if len(rfm) < 2:
        raise ChurnriskError(f"too few customers with orders up to {cutoff:%Y-%m-%d} to fit a value model.")
    args = (rfm["frequency"], rfm["recency"], rfm["T"])
    counts = BGNBD(modified=True).fit(*args)
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    spend = GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])
    weeks = days / WEEK_DAYS
    expected_orders = counts.expected_purchases(weeks, *args)
    return pd.DataFrame(
        {
            ID: rfm.index.to_numpy(),
            "expected_orders": expected_orders,
            "expected_revenue": expected_orders
            * spend.expected_spend(rfm["frequency"], rfm["monetary_value"]),
            "p_alive": counts.prob_alive(*args),
            "p_alive_end": counts.prob_alive_at(weeks, *args),
        }
    )


def value_errors(actual: pd.Series, predictions: dict[str, pd.Series]) -> pd.DataFrame:
    """Errors and totals of each prediction against the actual revenue of the same customers.

    ``mae`` and ``rmse`` per customer, ``predicted_total`` and ``actual_total`` over all of them.
    """
    truth = actual.to_numpy(dtype=float)
    rows = {}
    for name, predicted in predictions.items():
        error = predicted.to_numpy(dtype=float) - truth
        rows[name] = {
            "customers": len(truth),
            "mae": float(np.mean(np.abs(error))),
            "rmse": float(np.sqrt(np.mean(error**2))),
            "predicted_total": float(predicted.sum()),
            "actual_total": float(truth.sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def _regressor(schema: dict[str, str], random_state: int | None) -> Any:
    """Gradient boosting with a Poisson loss: revenue is zero for most customers and never negative."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    from churnrisk.model import tree_inputs

    prep, categories = tree_inputs(schema)
    booster = HistGradientBoostingRegressor(
        loss="poisson",
        learning_rate=0.05,
        max_iter=150,
        max_depth=3,
        min_samples_leaf=40,
        l2_regularization=1.0,
        categorical_features=categories,
        early_stopping=False,
        random_state=random_state,
    )
    return Pipeline([("prepare", prep), ("model", booster)])


# --- subscription data -----------------------------------------------------------------------------


def _subscription_forecast(store: Any, cutoff: datetime, days: int) -> ValueForecast:
    if "subscriptions" not in store:
        raise ChurnriskError("per-customer value of subscription data needs a 'subscriptions' table.")
    subs = store["subscriptions"]
    holdout = cutoff - timedelta(days=days)
    # an out-of-time check needs a survival curve at the holdout: some relationship ended by then
    evaluation = None
    if subs.filter(pl.col("ended_at") <= holdout).height:
        known = _subscription_table(subs, holdout, days).set_index(ID)
        predictions = {
            "survival": known["expected_revenue"],
            "last_period": _mrr_revenue(subs, holdout - timedelta(days=days), holdout, known.index),
            "mrr_no_churn": known["mrr"] * days / MONTH_DAYS,
        }
        evaluation = value_errors(_mrr_revenue(subs, holdout, cutoff, known.index), predictions)
    return ValueForecast(_subscription_table(subs, cutoff, days), "survival", evaluation)


def _subscription_table(subscriptions: pl.DataFrame, cutoff: datetime, days: int) -> pd.DataFrame:
    """Customers subscribed at ``cutoff``: MRR x expected active months from the conditional KM curve."""
    from churnrisk.horizons import expected_active_days, kaplan_meier, relationships, survival_at

    spells = relationships(subscriptions, cutoff)
    if spells.empty:
        raise ChurnriskError(f"no subscription started by {cutoff:%Y-%m-%d}: there is nothing to value.")
    curve = kaplan_meier(spells["duration"], spells["ended"])
    now = spells[~spells["ended"]].set_index(ID)["duration"].to_numpy()
    ids = spells.loc[~spells["ended"], ID].to_numpy()
    months = expected_active_days(curve, now, days) / MONTH_DAYS
    mrr = _mrr_at(subscriptions, cutoff).reindex(ids, fill_value=0.0).to_numpy()
    return pd.DataFrame(
        {
            ID: ids,
            "mrr": mrr,
            "expected_months": months,
            "expected_revenue": mrr * months,
            "p_active_end": survival_at(curve, now + days) / survival_at(curve, now),
        }
    )


def _mrr_at(subscriptions: pl.DataFrame, t: datetime) -> pd.Series:
    open_ = (pl.col("started_at") <= t) & (pl.col("ended_at").is_null() | (pl.col("ended_at") > t))
    mrr = subscriptions.filter(open_).group_by(ID).agg(pl.col("mrr").sum().cast(pl.Float64)).to_pandas()
    return mrr.set_index(ID)["mrr"]


def _mrr_revenue(subscriptions: pl.DataFrame, start: datetime, end: datetime, ids: pd.Index) -> pd.Series:
    """Subscription revenue of ``ids`` in ``(start, end]``: MRR x the months each spell overlaps it."""
    ended = pl.col("ended_at").fill_null(end).clip(upper_bound=end)
    overlap = ((ended - pl.col("started_at").clip(lower_bound=start)).dt.total_seconds() / 86_400).clip(0)
    revenue = subscriptions.select(ID, (pl.col("mrr") * overlap / MONTH_DAYS).alias("revenue"))
    totals = revenue.group_by(ID).agg(pl.col("revenue").sum().cast(pl.Float64)).to_pandas()
    return totals.set_index(ID)["revenue"].reindex(ids, fill_value=0.0)
