"""Benchmarks: each module is one command that writes its numbers to bench/results/."""
