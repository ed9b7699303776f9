"""Benchmarks: each figure measured beside a raw baseline in the same run, printed as JSON.

Run one with ``python -m benchmarks NAME [--quick]``; they are never part of the test run.
"""
