"""Benchmark: standard baseline codecs, Bjontegaard deltas, dataset runs and reports."""
