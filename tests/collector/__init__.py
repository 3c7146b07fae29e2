"""Tests of the reference collector (``tracing.collector``)."""
