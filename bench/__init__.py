"""Benchmarks and the chaos run: `make bench`, `make bench-quick`, `make chaos` (see docs/benchmarks.md)."""
