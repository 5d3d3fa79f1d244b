"""Model files that cannot run code when loaded (DESIGN §8).

A model is saved as two files side by side:

* ``NAME.skops`` — the fitted estimator in the skops format (a zip of JSON and NumPy arrays; loading
  builds objects from a schema and never unpickles);
* ``NAME.json`` — the metadata: package and library versions, churn definition, horizon, look-back,
  cutoffs, feature list and input schema, reference values, metrics, and the SHA-256 of the ``.skops``
  file.

Loading checks, in this order, before any object is built: the file is a zip (a pickle or joblib
file is refused unless ``trust_pickle=True``), the hash in the metadata matches the file, and every
type the file asks for is in :data:`TRUSTED_TYPES` — an allow-list written here, in our code. The
allow-list is never read from the file or its metadata: an attacker can rewrite those too.

Versions: a model saved with another scikit-learn version than the one installed loads with a
:class:`ModelVersionWarning` (tree and calibration internals rarely change, but the predictions of a
model pickled across versions are not guaranteed by scikit-learn); retrain to silence it. A model
saved by a newer churnrisk *major* version is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from churnrisk._io import atomic_path, check_writable
from churnrisk.errors import ChurnriskError
from churnrisk.model import ChurnModel

__all__ = ["FORMAT", "TRUSTED_TYPES", "ModelVersionWarning", "check_model_paths", "load_model", "save_model"]

FORMAT = "churnrisk-model/1"
_ZIP_MAGIC = b"PK\x03\x04"
_LIBRARIES = ("churnrisk", "scikit-learn", "numpy", "scipy", "pandas", "skops")

#: Types beyond skops' defaults that a churnrisk model may contain. Written here, never read from a file.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "churnrisk.hazard.HazardModel",  # a hazard classifier and its horizons (ints): data only
        "functools.partial",  # only around check_array, itself on the list
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.model_selection._split.StratifiedKFold",  # the cv of a snapshot model's calibration
        "sklearn.utils._bunch.Bunch",  # a dict: the named members of a blend (VotingClassifier)
        "sklearn.utils.validation.check_array",
    }
)


class ModelVersionWarning(UserWarning):
    """The model was saved with other library versions than the ones installed."""


def _versions() -> dict[str, str]:
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - a library always installed with churnrisk
            out[name] = "unknown"
    return out


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix != ".skops":
        path = path.with_name(path.name + ".skops")
    return path, path.with_suffix(".json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_model_paths(
    path: str | os.PathLike[str],
    metrics: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
    exact: bool = True,
) -> tuple[Path, Path]:
    """The ``.skops`` file and its ``.json`` sidecar, refused before any work when they cannot be written.

    With ``exact`` (the command line) the path must end in ``.skops``: a model file is never
    written anywhere the user did not name. Without it a bare name (``models/demo``) gets the
    suffix, but another suffix is still refused. An extra ``metrics`` file must not be the sidecar,
    and existing files need ``overwrite``.
    """
    given = Path(path)
    if given.suffix != ".skops" and (exact or given.suffix):
        raise ChurnriskError(
            f"a model file ends in .skops; got {str(given)!r}. Suggestion: -o {given.with_suffix('.skops')}."
        )
    model_path, meta_path = _paths(given)
    if metrics is not None and Path(metrics).resolve() == meta_path.resolve():
        raise ChurnriskError(
            f"--metrics {metrics} is the model's own metadata file (written beside {model_path}). "
            f"Suggestion: --metrics {meta_path.with_name(meta_path.stem + '.metrics.json')}."
        )
    for target in (model_path, meta_path, *(() if metrics is None else (Path(metrics),))):
        check_writable(target, overwrite=overwrite)
    return model_path, meta_path


def save_model(model: ChurnModel, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``NAME.skops`` and its ``NAME.json`` metadata; returns the ``.skops`` path.

    ``path`` ends in ``.skops``, or is a bare name that gets it (another suffix is refused).
    Refuses to replace existing files unless ``overwrite=True``.
    """
    import skops.io as sio

    model_path, meta_path = check_model_paths(path, overwrite=overwrite, exact=False)
    with atomic_path(model_path, overwrite=overwrite) as tmp:
        sio.dump(model.estimator, tmp, compression=8)  # 8 = zipfile.ZIP_DEFLATED
    metadata = {**model.metadata, "format": FORMAT, "versions": _versions(), "sha256": _sha256(model_path)}
    with atomic_path(meta_path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(metadata, indent=2, default=str), encoding="utf-8")
    return model_path


def load_model(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> ChurnModel:
    """Load a model written by :func:`save_model`, building only allow-listed types.

    Parameters
    ----------
    path : path
        The ``.skops`` file (or its name without the suffix).
    trust_pickle : bool, default False
        Load a pickle or joblib file **that you trust**: unpickling runs whatever code the file
        names. Without this flag such a file is refused before a single byte is unpickled.
    """
    model_path, meta_path = _paths(path)
    if not model_path.is_file() and Path(path).is_file():
        model_path = Path(path)
    if not model_path.is_file():
        raise ChurnriskError(f"model file {model_path} does not exist. Suggestion: check the path.")
    with model_path.open("rb") as handle:
        head = handle.read(4)
    if head != _ZIP_MAGIC:
        return _load_pickle(model_path, trust_pickle)
    metadata = _read_metadata(meta_path, model_path)
    estimator = _load_skops(model_path)
    _check_versions(metadata)
    return ChurnModel(estimator, metadata)


def _read_metadata(meta_path: Path, model_path: Path) -> dict[str, Any]:
    if not meta_path.is_file():
        raise ChurnriskError(
            f"{model_path} has no metadata file {meta_path.name} beside it, so it is not a model churnrisk "
            "wrote (or the two were separated). Suggestion: copy the .json file next to the .skops file."
        )
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChurnriskError(f"metadata file {meta_path} is not valid JSON: {exc}.") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ChurnriskError(f"{meta_path} is not churnrisk model metadata (format {FORMAT!r} expected).")
    if metadata.get("sha256") != _sha256(model_path):
        raise ChurnriskError(
            f"{model_path} does not match the hash in {meta_path.name}: the file changed after it was saved. "
            "Suggestion: retrain, or restore the original file."
        )
    return metadata


def _load_skops(model_path: Path) -> Any:
    import skops.io as sio

    try:
        requested = sio.get_untrusted_types(file=model_path)
    except Exception as exc:  # a broken zip or schema: skops raises many kinds
        raise ChurnriskError(f"{model_path} is not a readable skops file: {exc}.") from None
    refused = sorted(set(requested) - TRUSTED_TYPES)
    if refused:
        raise ChurnriskError(
            f"{model_path} asks for types churnrisk does not trust: {', '.join(refused)}. It was not loaded. "
            "Suggestion: only load models that churnrisk trained."
        )
    return sio.load(model_path, trusted=sorted(requested))


def _load_pickle(model_path: Path, trust_pickle: bool) -> ChurnModel:
    if not trust_pickle:
        raise ChurnriskError(
            f"{model_path} is not a churnrisk model file (it looks like a pickle or joblib file). Loading "
            "such a file can run any code it contains, so it was refused and not read. Suggestion: retrain "
            "with churnrisk, or, only if you trust where the file came from, pass --trust-pickle."
        )
    import joblib

    obj = joblib.load(model_path)  # the user said they trust this file
    if not isinstance(obj, ChurnModel):
        raise ChurnriskError(f"{model_path} holds a {type(obj).__name__}, not a churnrisk ChurnModel.")
    return obj


def _check_versions(metadata: dict[str, Any]) -> None:
    saved = metadata.get("versions", {})
    here = _versions()
    major = str(saved.get("churnrisk", "0")).split(".")[0]
    if major.isdigit() and int(major) > int(here["churnrisk"].split(".")[0] or 0):
        raise ChurnriskError(
            f"the model was saved by churnrisk {saved['churnrisk']}, newer than this {here['churnrisk']}. "
            "Suggestion: upgrade churnrisk."
        )
    differ = [f"{k} {saved[k]} (installed {here[k]})" for k in ("scikit-learn",) if saved.get(k) != here[k]]
    if differ:
        warnings.warn(
            f"the model was saved with {', '.join(differ)}; its predictions may differ slightly. "
            "Retrain it with the installed versions to be sure.",
            ModelVersionWarning,
            stacklevel=2,
        )
