"""Benchmarks that print their figures: speed targets are measured here, not in timed unit tests."""
