"""Benchmarks run against real processes (`make bench-*`); not part of the installed package."""
