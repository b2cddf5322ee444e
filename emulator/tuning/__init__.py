"""Hyperparameter tuning jobs: CreateHyperParameterTuningJob in, DescribeHyperParameterTuningJob out.

``spec`` parses and checks the request (pure), ``strategy`` is the search (optuna), ``job`` runs the training jobs.
"""

from emulator.tuning.job import TuningJob, list_training_jobs, local_parallelism

__all__ = ["TuningJob", "list_training_jobs", "local_parallelism"]
