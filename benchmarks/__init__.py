"""Benchmarks: not tests. See README.md; run with ``make bench``."""
