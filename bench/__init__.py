"""Benchmarks that print their figures; results are quoted in docs/benchmarks.md."""
