"""``train``: fit a decision tree on the ``train`` channel and save it under ``/opt/ml/model``.

SageMaker runs ``docker run IMAGE train`` with:

- ``/opt/ml/input/config/hyperparameters.json``: every value a string (see :class:`Hyperparameters`);
- ``/opt/ml/input/data/train/*.csv``: label first, then the 4 features, no header (a header row
  ``sepal_length,sepal_width,petal_length,petal_width,species`` is accepted too);
- optionally ``/opt/ml/input/data/validation/`` (or ``test/``) to report accuracy on.

It prints ``train_accuracy=0.98;`` / ``validation_accuracy=0.95;`` lines for MetricDefinitions,
writes ``/opt/ml/model/model.joblib`` and ``/opt/ml/model/metadata.json`` (on a multi-host job only the first
host of ``hosts`` does, so the hosts' artifacts never clash), and on any error writes
the reason to ``/opt/ml/output/failure`` and exits non-zero (2 for bad hyperparameters, 143 on SIGTERM).

With ``CheckpointConfig`` (``/opt/ml/input/config/checkpointconfig.json``) the fitted tree is also saved as a
checkpoint in its ``LocalPath``, and a job that finds one there (a restart: SageMaker copies the checkpoints back
in) takes that tree instead of fitting again and prints ``resumed from the checkpoint in <LocalPath>``.
"""

from __future__ import annotations

import json
import platform
import sys
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .common import (
    FEATURE_NAMES,
    LABEL_NAME,
    ML_ROOT,
    AlgorithmError,
    ConfigurationError,
    Terminated,
    fail,
    sigterm_raises,
)
from .model import MODEL_FILE, LabelledData, csv_files, load_model, read_labelled_dir, save_model

CRITERIA = ("gini", "entropy", "log_loss")
EVALUATION_CHANNELS = ("validation", "test")


# --------------------------------------------------------------------------- hyperparameters


def _text(name: str, value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"hyperparameter {name!r} must be a string, got {json.dumps(value)}")
    return str(value)


def _integer(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    text = _text(name, value)
    try:
        number = int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            as_float = float("nan")
        if not as_float.is_integer():
            raise ConfigurationError(_range_message(name, text, minimum, maximum)) from None
        number = int(as_float)
    if number < minimum or (maximum is not None and number > maximum):
        raise ConfigurationError(_range_message(name, text, minimum, maximum))
    return number


def _range_message(name: str, text: str, minimum: int, maximum: int | None) -> str:
    bound = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
    return f"hyperparameter {name!r} must be {bound}, got {text!r}; fix it in the job's HyperParameters"


@dataclass(frozen=True)
class Hyperparameters:
    """The algorithm's hyperparameters (SageMaker passes each one as a string).

    ==================  ========  ==================================================
    name                default   meaning
    ==================  ========  ==================================================
    max_depth           None      maximum tree depth; "None" or "" for unlimited
    criterion           gini      split quality: gini, entropy or log_loss
    min_samples_leaf    1         minimum number of samples in a leaf
    random_state        0         seed of the tree's tie-breaking
    ==================  ========  ==================================================
    """

    max_depth: int | None = None
    criterion: str = "gini"
    min_samples_leaf: int = 1
    random_state: int = 0

    @classmethod
    def from_strings(cls, raw: Mapping[str, object]) -> Hyperparameters:
        """Parse SageMaker's string values; raise :class:`ConfigurationError` on a bad one."""
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "max_depth":
                text = _text(name, value)
                if text.lower() in ("", "none", "null"):
                    values[name] = None
                else:
                    try:
                        values[name] = _integer(name, text, 1)
                    except ConfigurationError:
                        raise ConfigurationError(
                            f"hyperparameter 'max_depth' must be a positive integer or 'None', got {text!r}; "
                            "fix it in the job's HyperParameters"
                        ) from None
            elif name == "criterion":
                text = _text(name, value).lower()
                if text not in CRITERIA:
                    raise ConfigurationError(
                        f"hyperparameter 'criterion' must be one of {', '.join(CRITERIA)}, got {_text(name, value)!r}; "
                        "fix it in the job's HyperParameters"
                    )
                values[name] = text
            elif name == "min_samples_leaf":
                values[name] = _integer(name, value, 1)
            elif name == "random_state":
                values[name] = _integer(name, value, 0, 2**32 - 1)
            else:
                print(f"warning: ignoring unknown hyperparameter {name!r}", file=sys.stderr, flush=True)
        return cls(**values)


# --------------------------------------------------------------------------- job configuration


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc}") from exc
    except ValueError as exc:
        raise ConfigurationError(f"{what} {path} is not valid JSON: {exc}") from exc


def read_hyperparameters(config_dir: Path) -> Hyperparameters:
    path = config_dir / "hyperparameters.json"
    if not path.exists():
        print(f"note: {path} does not exist; using the default hyperparameters", flush=True)
        return Hyperparameters()
    raw = _read_json(path, "hyperparameters file")
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{path} must hold a JSON object of name -> string, got {type(raw).__name__}")
    return Hyperparameters.from_strings(raw)


def check_input_config(config_dir: Path) -> bool:
    """Read inputdataconfig.json / resourceconfig.json when present; tolerate any extra keys.

    Returns whether this host saves the model: the only host, or the first of ``hosts``. The others train the
    same tree and exit 0 without writing it, so the hosts' merged model.tar.gz has no name clashes.
    """
    leader = True
    input_config_path = config_dir / "inputdataconfig.json"
    if input_config_path.exists():
        config = _read_json(input_config_path, "input data config")
        if isinstance(config, dict):
            for channel, settings in config.items():
                mode = settings.get("TrainingInputMode", "File") if isinstance(settings, dict) else "File"
                if str(mode).lower() == "pipe":
                    raise ConfigurationError(
                        f"channel {channel!r} uses TrainingInputMode 'Pipe'; this algorithm reads files: "
                        "use 'File' (or 'FastFile')"
                    )
    resource_config_path = config_dir / "resourceconfig.json"
    if resource_config_path.exists():
        config = _read_json(resource_config_path, "resource config")
        if isinstance(config, dict):
            hosts = config.get("hosts") or []
            print(f"training on host {config.get('current_host', '?')} of {len(hosts) or 1}", flush=True)
            if isinstance(hosts, list) and len(hosts) > 1:
                leader = config.get("current_host") == hosts[0]
                print(f"note: single-node algorithm: every host trains the same tree, {hosts[0]} saves it", flush=True)
    return leader


def read_channel(data_dir: Path, channel: str, required: bool) -> LabelledData | None:
    directory = data_dir / channel
    if not directory.is_dir():
        if required:
            raise AlgorithmError(
                f"channel {channel!r} is missing: {directory} does not exist; give the job a {channel!r} channel"
            )
        return None
    if not csv_files(directory):
        found = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())[:5]
        raise AlgorithmError(
            f"channel {channel!r} has no .csv file in {directory} (found {found or 'nothing'}); "
            "give it CSV files with the label first, then the 4 features"
        )
    data = read_labelled_dir(directory)
    if required and len(data) == 0:
        raise AlgorithmError(f"channel {channel!r} has no data rows in {directory}")
    return data


# --------------------------------------------------------------------------- training


class _Progress:
    """What has been done so far, so that SIGTERM can save a fitted model that is not saved yet."""

    def __init__(self) -> None:
        self.estimator: Any = None
        self.metadata: dict[str, Any] | None = None
        self.saved = False


def read_checkpoint_dir(root: Path) -> Path | None:
    """CheckpointConfig.LocalPath from ``checkpointconfig.json`` (a path under /opt/ml is taken under ``root``);
    None when the job has no CheckpointConfig."""
    path = root / "input" / "config" / "checkpointconfig.json"
    if not path.exists():
        return None
    raw = _read_json(path, "checkpoint config file")
    local = raw.get("LocalPath") if isinstance(raw, dict) else None
    local = str(local or f"{ML_ROOT}/checkpoints")
    if local == ML_ROOT or local.startswith(ML_ROOT + "/"):
        return root / local[len(ML_ROOT) :].strip("/")
    return Path(local)


def _resume(checkpoint_dir: Path | None) -> Any:
    """The tree saved in ``checkpoint_dir`` by an earlier run of the job, or None (also when it cannot be loaded)."""
    if checkpoint_dir is None or not (checkpoint_dir / MODEL_FILE).is_file():
        return None
    try:
        return load_model(checkpoint_dir).estimator
    except AlgorithmError as exc:
        print(f"warning: ignoring the checkpoint in {checkpoint_dir}: {exc}", file=sys.stderr, flush=True)
        return None


def _accuracy(estimator: Any, data: LabelledData) -> float:
    return float(np.mean(estimator.predict(data.features) == data.labels))


def run(root: Path, progress: _Progress | None = None) -> dict[str, float]:
    """Train from the ``root`` tree (``/opt/ml`` layout); return the metrics."""
    from sklearn import __version__ as sklearn_version
    from sklearn.tree import DecisionTreeClassifier

    progress = progress or _Progress()
    config_dir = root / "input" / "config"
    data_dir = root / "input" / "data"
    hyperparameters = read_hyperparameters(config_dir)
    print(f"hyperparameters: {asdict(hyperparameters)}", flush=True)
    # A host other than the first of a multi-host job never saves: nothing is left to save on SIGTERM either.
    progress.saved = not check_input_config(config_dir)
    train = read_channel(data_dir, "train", required=True)
    assert train is not None
    print(f"read {len(train)} training rows", flush=True)

    checkpoint_dir = read_checkpoint_dir(root)
    estimator = _resume(checkpoint_dir)
    if estimator is not None:
        print(f"resumed from the checkpoint in {checkpoint_dir}", flush=True)
    else:
        estimator = DecisionTreeClassifier(
            max_depth=hyperparameters.max_depth,
            criterion=hyperparameters.criterion,
            min_samples_leaf=hyperparameters.min_samples_leaf,
            random_state=hyperparameters.random_state,
        )
        estimator.fit(train.features, train.labels)
    metrics: dict[str, float] = {}
    progress.estimator = estimator
    progress.metadata = {
        "algorithm": "iris_tree decision tree",
        "version": __version__,
        "feature_names": list(FEATURE_NAMES),
        "label_name": LABEL_NAME,
        "classes": [str(c) for c in estimator.classes_],
        "hyperparameters": asdict(hyperparameters),
        "metrics": metrics,
        "training_rows": len(train),
        "python_version": platform.python_version(),
        "sklearn_version": sklearn_version,
    }
    if checkpoint_dir is not None and not progress.saved:  # one host checkpoints: the hosts share one S3Uri
        save_model(checkpoint_dir, estimator, progress.metadata)
        print(f"saved a checkpoint to {checkpoint_dir}", flush=True)

    metrics["train_accuracy"] = _accuracy(estimator, train)
    print(f"train_accuracy={metrics['train_accuracy']:.4f};", flush=True)
    for channel in EVALUATION_CHANNELS:
        data = read_channel(data_dir, channel, required=False)
        if data is not None and len(data):
            metrics[f"{channel}_accuracy"] = _accuracy(estimator, data)
            print(f"{channel}_accuracy={metrics[f'{channel}_accuracy']:.4f};", flush=True)

    model_dir = root / "model"
    if progress.saved:
        print("not saving the model: the first host does", flush=True)
        return metrics
    save_model(model_dir, estimator, progress.metadata)
    progress.saved = True
    print(f"saved the model to {model_dir}", flush=True)
    return metrics


def main(argv: list[str] | None = None, root: str | Path = ML_ROOT) -> int:
    """Entry point of ``train``; returns the process exit code. ``argv`` is ignored."""
    root = Path(root)
    failure_path = root / "output" / "failure"
    progress = _Progress()
    with sigterm_raises():
        try:
            run(root, progress)
        except AlgorithmError as exc:
            return fail(failure_path, str(exc), exc.exit_code)
        except Terminated:
            note = ""
            if progress.estimator is not None and not progress.saved:
                try:
                    save_model(root / "model", progress.estimator, progress.metadata or {})
                    note = "; the fitted model was saved"
                except Exception as exc:
                    note = f"; could not save the fitted model: {exc}"
            return fail(failure_path, f"training was stopped by SIGTERM before it finished{note}", 143)
        except Exception as exc:
            traceback.print_exc()
            return fail(failure_path, f"unexpected error: {type(exc).__name__}: {exc}", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
