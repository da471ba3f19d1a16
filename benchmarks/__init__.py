"""Benchmarks: synth, checks, Lambda and recovery figures (make bench)."""
