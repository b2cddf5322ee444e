"""Iris decision tree: a reference bring-your-own-container SageMaker algorithm.

The package holds everything the three container commands run:

- ``processing`` (:mod:`iris_tree.processing`): split a raw iris CSV into train/test CSVs;
- ``train`` (:mod:`iris_tree.train`): fit a decision tree from the ``train`` channel;
- ``serve`` (:mod:`iris_tree.serve`): answer ``/ping`` and ``/invocations`` with gunicorn.

Every entry point takes the SageMaker root (``/opt/ml`` in a container) as a parameter so the
code can be exercised in-process against a temporary directory.
"""

__version__ = "1.0.0"
