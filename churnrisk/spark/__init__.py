"""The Apache Spark engine (DESIGN §7): the same feature and label definitions, run by Spark.

For event logs that outgrow one machine. Install the extra: ``pip install "churnrisk[spark]"``
(PySpark; Spark needs Java 17 or later). The functions here take and return Spark DataFrames, so
nothing is collected to the driver until you ask for it. One module per job:

* :mod:`._session` — :func:`spark_session`, a session (local mode by default, small memory), or
  the existing one under ``spark-submit`` or in a notebook;
* :mod:`._store` — :func:`read_store`, the event-store tables from any path Spark reads (a local
  folder, ``hdfs://``, ``s3a://``, ...), as ``<table>.parquet`` / ``<table>.csv`` files or
  folders, typed like :class:`~churnrisk.store.EventStore`;
  :meth:`SparkEventStore.from_event_store` hands an in-memory store to Spark;
* :mod:`._features` — :func:`build_features`, the point-in-time features of
  :func:`churnrisk.features.build_features` from the same declarations
  (:mod:`churnrisk.features._spark`), :func:`with_repeat_buying` (the BG/NBD columns of
  order-data models); :func:`write_parquet` and :func:`to_pandas`;
* :mod:`._labels` — :func:`make_labels`, the steps of :func:`churnrisk.definition.label_steps`
  (the same ones :mod:`churnrisk.labels` runs with Polars) executed by Spark;
* :mod:`._training` — :func:`build_training_set`, and :func:`run` (one call per command);
* :mod:`._scoring` — :func:`score`, a saved model applied to a Spark DataFrame of features on the
  executors, the model loaded once per Python worker through :func:`churnrisk.modelfile.load_model`.
"""

from churnrisk.spark._features import build_features, to_pandas, with_repeat_buying, write_parquet
from churnrisk.spark._labels import data_end, make_labels
from churnrisk.spark._scoring import score
from churnrisk.spark._session import INSTALL, _url, spark_available, spark_session
from churnrisk.spark._store import SparkEventStore, read_store
from churnrisk.spark._training import build_training_set, run

__all__ = [
    "INSTALL",
    "SparkEventStore",
    "_url",
    "build_features",
    "build_training_set",
    "data_end",
    "make_labels",
    "read_store",
    "run",
    "score",
    "spark_available",
    "spark_session",
    "to_pandas",
    "with_repeat_buying",
    "write_parquet",
]
