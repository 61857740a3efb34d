"""Benchmarks: scripts that print figures and their ratio to a floor; never tests."""
