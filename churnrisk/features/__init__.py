"""Point-in-time features per customer (DESIGN §4): declarative signal families, one executor.

The families are data (:data:`FAMILIES`, see :mod:`churnrisk.features._spec` for the format);
:func:`build_features` runs them with Polars; :func:`describe_feature` and :func:`explain` turn a
column or a customer's value into words, from the same declarations.
"""

from churnrisk.features._build import build_features, feature_table
from churnrisk.features._describe import describe_feature, explain, feature_columns
from churnrisk.features._partitioned import PartitionedFeatures, build_features_partitioned
from churnrisk.features._spec import DEFAULT_WINDOWS, FAMILIES, feature_inputs

__all__ = [
    "DEFAULT_WINDOWS",
    "FAMILIES",
    "PartitionedFeatures",
    "build_features",
    "build_features_partitioned",
    "describe_feature",
    "explain",
    "feature_columns",
    "feature_inputs",
    "feature_table",
]
