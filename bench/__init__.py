"""Benchmarks that print figures (not timed tests): `python -m bench [--only NAME]`.

Each part lives in its own module and returns a `bench.report.Part`; `bench.__main__` prints them as tables and
records them in bench/RESULTS.md.
"""
