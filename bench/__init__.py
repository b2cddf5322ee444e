"""Benchmarks of the emulator against bare Docker (not tests: run ``python bench/run.py``)."""
