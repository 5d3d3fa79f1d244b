"""Training sets: features and labels stacked over many cutoffs, keyed by (customer_id, cutoff).

Every row is one customer at one cutoff (DESIGN §3): features see only events up to the cutoff,
the label only ``(cutoff + lead_time, cutoff + lead_time + horizon]``. The event tables are
put in time order and encoded once, and reused for every cutoff. Rows of a censored cutoff (its
horizon runs past the end of the data) are kept with a missing ``churned``, so that
:func:`update_training_set` can fill them in once the outcome is known, next to the rows of the
new cutoffs, without rebuilding history.

A training set is stored either as one ``.csv`` / ``.parquet`` file or, for any other path, as a
folder of one Parquet file of features per cutoff (``cutoff=2024-06-30.parquet``), a small one
of its labels beside it (``cutoff=2024-06-30.labels.parquet``) and ``training-set.json``
recording the label options and windows. :func:`append_training_set` on a folder computes only
the new cutoffs and rewrites only the labels files whose censored labels became known;
:func:`read_training_set` reads either form into the frame :func:`build_training_set` gives.
"""

from churnrisk.training._cutoffs import (
    WARM_UP,
    check_label_window,
    cutoff_range,
    cutoff_step,
    default_cutoffs,
    make_cutoffs,
    split_cutoffs,
)
from churnrisk.training._rows import (
    REPEAT_BUYING,
    eligible_customers,
    repeat_buying,
    training_rows,
    uses_repeat_buying,
    with_repeat_buying,
)
from churnrisk.training._sets import build_training_set, training_inputs
from churnrisk.training._storage import (
    TrainingSetSummary,
    append_training_set,
    is_folder_path,
    read_training_set,
    update_training_set,
    write_training_set,
)

__all__ = [
    "REPEAT_BUYING",
    "WARM_UP",
    "TrainingSetSummary",
    "append_training_set",
    "build_training_set",
    "check_label_window",
    "cutoff_range",
    "cutoff_step",
    "default_cutoffs",
    "eligible_customers",
    "is_folder_path",
    "make_cutoffs",
    "read_training_set",
    "repeat_buying",
    "split_cutoffs",
    "training_inputs",
    "training_rows",
    "update_training_set",
    "uses_repeat_buying",
    "with_repeat_buying",
    "write_training_set",
]
