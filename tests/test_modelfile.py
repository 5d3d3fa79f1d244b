"""Model files: round trip, metadata, refusal of pickles and unknown types, hash and version checks."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from churnrisk.errors import ChurnriskError
from churnrisk.model import (
    MODEL_KINDS,
    ChurnModel,
    fit_calibrated,
    input_schema,
    make_pipeline,
    prepare_features,
)
from churnrisk.modelfile import ModelVersionWarning, load_model, save_model


def _model(kind: str = "gbm", seed: int = 0) -> tuple[ChurnModel, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.random(300),
            "b": np.where(rng.random(300) < 0.2, np.nan, rng.random(300)),
            "c": rng.choice(["x", "y", "z"], 300),
        }
    )
    y = (rng.random(300) < X["a"]).astype(int)
    schema = input_schema(X)
    prepared = prepare_features(X, schema)
    estimator = fit_calibrated(
        make_pipeline(schema, model=kind), prepared[:200], y[:200], prepared[200:], y[200:]
    )
    return ChurnModel(estimator, {"schema": schema, "definition": "label column", "horizon": 90}), X


class _Payload:
    """Unpickling this calls os.system, which writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_round_trip_gives_identical_probabilities(tmp_path, kind):
    model, X = _model(kind)
    path = save_model(model, tmp_path / "m")
    assert path == tmp_path / "m.skops"
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["horizon"] == 90
    assert meta["schema"] == {"a": "number", "b": "number", "c": "category"}
    assert {"scikit-learn", "churnrisk", "numpy"} <= set(meta["versions"])
    assert len(meta["sha256"]) == 64


def test_snapshot_model_round_trip(tmp_path):
    from churnrisk.snapshot import train_snapshot

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    table["y"] = (rng.random(200) < 1 / (1 + np.exp(-table["x"]))).astype(int)
    model = train_snapshot(table, label="y")
    loaded = load_model(save_model(model, tmp_path / "snap"))
    np.testing.assert_array_equal(loaded.predict_proba(table), model.predict_proba(table))


def test_save_refuses_to_overwrite(tmp_path):
    model, _ = _model()
    save_model(model, tmp_path / "m.skops")
    with pytest.raises(ChurnriskError, match="already exists"):
        save_model(model, tmp_path / "m.skops")


@pytest.mark.parametrize("writer", ["pickle", "joblib"])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.skops"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        joblib.dump(_Payload(marker), path)
    with pytest.raises(ChurnriskError, match="trust-pickle"):
        load_model(path)
    assert not marker.exists()


def test_trusted_pickle_loads_only_with_the_flag(tmp_path):
    model, X = _model()
    path = tmp_path / "old.joblib"
    joblib.dump(model, path)
    with pytest.raises(ChurnriskError, match="pickle or joblib"):
        load_model(path)
    np.testing.assert_array_equal(
        load_model(path, trust_pickle=True).predict_proba(X), model.predict_proba(X)
    )


def test_skops_file_with_untrusted_type_is_refused(tmp_path):
    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier

    model, _ = _model()
    save_model(model, tmp_path / "m")
    # An attacker rewrites the model file and the hash in the metadata, but cannot touch our allow-list.
    other = DecisionTreeClassifier().fit([[0], [1]], [0, 1])  # its Tree type is not on the list
    sio.dump({"x": other, "k": KNeighborsClassifier()}, tmp_path / "m.skops")
    import hashlib

    meta = json.loads((tmp_path / "m.json").read_text())
    meta["sha256"] = hashlib.sha256((tmp_path / "m.skops").read_bytes()).hexdigest()
    meta["trusted"] = ["sklearn.tree._tree.Tree"]  # ignored: trust never comes from the file
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ChurnriskError, match=r"does not trust: sklearn\.tree\._tree\.Tree"):
        load_model(tmp_path / "m.skops")


def test_changed_file_fails_the_hash_check(tmp_path):
    model, _ = _model()
    path = save_model(model, tmp_path / "m")
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChurnriskError, match="does not match the hash"):
        load_model(path)


def test_missing_metadata_is_refused(tmp_path):
    model, _ = _model()
    path = save_model(model, tmp_path / "m")
    (tmp_path / "m.json").unlink()
    with pytest.raises(ChurnriskError, match="no metadata file m.json"):
        load_model(path)


def test_other_sklearn_version_warns(tmp_path):
    model, X = _model()
    path = save_model(model, tmp_path / "m")
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["versions"]["scikit-learn"] = "0.24.2"
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.warns(ModelVersionWarning, match=r"scikit-learn 0\.24\.2"):
        loaded = load_model(path)
    assert len(loaded.predict_proba(X)) == len(X)
