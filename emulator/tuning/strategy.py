"""The search over hyperparameter ranges, on optuna: what to try next, and whether a running job trails.

Why optuna: it is a well-kept optimizer library that has every strategy the platform names (``Random`` ->
``RandomSampler``, ``Grid`` -> ``GridSampler``, ``Bayesian`` -> ``TPESampler``, a sequential model-based optimizer
like the platform's Bayesian search), pruners for early stopping (``MedianPruner`` is the platform's documented
"Auto" rule: stop a job whose objective at a step trails the median of earlier jobs at that step;
``HyperbandPruner`` for ``Hyperband``), an ask/tell interface that fits jobs running in parallel, and every
sampler takes a seed, so ``RandomSeed`` repeats a run.

Scaling types map onto optuna's distributions: ``Linear`` and ``Auto`` sample uniformly, ``Logarithmic``
log-uniformly, and ``ReverseLogarithmic`` samples ``1 - x`` log-uniformly (dense near 1). Values reach the
container as strings, as on the platform: integers as ``"7"``, continuous values as Python's shortest repr.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator import constants
from emulator.tuning.spec import Range

if TYPE_CHECKING:
    import optuna


@dataclass
class Trial:
    """One point to try: the tuned hyperparameters as the container sees them (strings)."""

    number: int
    hyperparameters: dict[str, str]
    handle: optuna.trial.Trial


class Strategy:
    """One definition's search: :meth:`ask` the next hyperparameters, :meth:`report` intermediate objective values
    (True: stop the job, it trails), :meth:`tell` the final one. Thread-safe.

    Args:
        strategy: Random, Grid, Bayesian or Hyperband.
        ranges: the definition's ranges.
        maximize: the objective's Type is Maximize.
        early_stopping: TrainingJobEarlyStoppingType Auto (Hyperband stops trailing jobs in any case).
        seed: RandomSeed; the same seed and the same results give the same hyperparameters.
    """

    def __init__(
        self,
        strategy: str,
        ranges: Iterable[Range],
        *,
        maximize: bool,
        early_stopping: bool = False,
        seed: int | None = None,
        min_resource: int | None = None,
        max_resource: int | None = None,
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.ranges = tuple(ranges)
        self._lock = threading.Lock()
        self._distributions = {r.name: _distribution(r) for r in self.ranges}
        sampler: optuna.samplers.BaseSampler
        if strategy == "Grid":
            sampler = optuna.samplers.GridSampler({r.name: list(r.values) for r in self.ranges}, seed=seed)
        elif strategy == "Random":
            sampler = optuna.samplers.RandomSampler(seed=seed)
        else:  # Bayesian, Hyperband: a model of the results so far; constant_liar keeps parallel asks apart
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=3)
        pruner: optuna.pruners.BasePruner
        if strategy == "Hyperband":
            pruner = optuna.pruners.HyperbandPruner(
                min_resource=min_resource or 1, max_resource=max_resource or "auto", reduction_factor=3
            )
        elif early_stopping:
            pruner = optuna.pruners.MedianPruner(n_startup_trials=constants.EARLY_STOPPING_MIN_JOBS, n_warmup_steps=0)
        else:
            pruner = optuna.pruners.NopPruner()
        self.study = optuna.create_study(
            direction="maximize" if maximize else "minimize", sampler=sampler, pruner=pruner
        )

    def ask(self) -> Trial:
        """The next hyperparameters to try."""
        with self._lock:
            handle = self.study.ask(self._distributions)
            values = {r.name: _external(r, handle.params[r.name]) for r in self.ranges}
        return Trial(handle.number, values, handle)

    def report(self, trial: Trial, step: int, value: float) -> bool:
        """An intermediate objective value of a running job; True when the job trails and should stop."""
        if not math.isfinite(value):
            return False
        with self._lock:
            trial.handle.report(value, step)
        return self.trails(trial)

    def trails(self, trial: Trial) -> bool:
        """Whether a running job's last intermediate value trails the jobs that ended (asked again as they end)."""
        with self._lock:
            return bool(trial.handle.should_prune())

    def tell(self, trial: Trial, value: float | None, *, stopped_early: bool = False) -> None:
        """The job's end: its final objective (None: it failed or emitted none)."""
        import optuna

        with self._lock:
            try:
                if stopped_early:
                    self.study.tell(trial.handle, state=optuna.trial.TrialState.PRUNED)
                elif value is None or not math.isfinite(value):
                    self.study.tell(trial.handle, state=optuna.trial.TrialState.FAIL)
                else:
                    self.study.tell(trial.handle, value)
            except RuntimeError:
                # GridSampler calls study.stop() once every grid point has run, which only an optimize() loop may
                # do; the result is stored before that (optuna's tell saves it in a finally), and the tuning job
                # asks for no more points than the grid has.
                if not isinstance(self.study.sampler, optuna.samplers.GridSampler):
                    raise

    def seen(self, hyperparameters: Mapping[str, str], value: float) -> bool:
        """Add a finished job of an earlier tuning job (WarmStartConfig); False when it lies outside the ranges."""
        import optuna

        params: dict[str, Any] = {}
        for r in self.ranges:
            if r.name not in hyperparameters:
                return False
            internal = _internal(r, hyperparameters[r.name])
            if internal is None:
                return False
            params[r.name] = internal
        with self._lock:
            self.study.add_trial(
                optuna.trial.create_trial(params=params, distributions=self._distributions, value=value)
            )
        return True


def _distribution(r: Range) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if r.kind == "Categorical":
        return CategoricalDistribution(list(r.values))
    if r.kind == "Integer":
        return IntDistribution(int(r.low), int(r.high), log=r.scaling == "Logarithmic")
    if r.scaling == "ReverseLogarithmic":
        return FloatDistribution(1.0 - r.high, 1.0 - r.low, log=True)
    return FloatDistribution(r.low, r.high, log=r.scaling == "Logarithmic")


def _external(r: Range, internal: Any) -> str:
    if r.kind == "Categorical":
        return str(internal)
    if r.kind == "Integer":
        return str(int(internal))
    value = 1.0 - float(internal) if r.scaling == "ReverseLogarithmic" else float(internal)
    return repr(min(max(value, r.low), r.high))


def _internal(r: Range, text: str) -> Any:
    """The optuna value of a hyperparameter string, or None when it is not in the range."""
    if r.kind == "Categorical":
        return text if text in r.values else None
    try:
        value = float(text)
    except ValueError:
        return None
    if not r.low <= value <= r.high:
        return None
    if r.kind == "Integer":
        return int(value) if value == int(value) else None
    if r.scaling == "ReverseLogarithmic":
        return 1.0 - value if value < 1.0 else None
    return value
