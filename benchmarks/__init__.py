"""Benchmarks and the experiments report (``python -m benchmarks.reproduce``)."""
