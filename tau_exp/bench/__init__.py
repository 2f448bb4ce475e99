"""Benchmark adapters: which tasks exist and how one (task, trial) episode is run and scored.
`tau2.py` is the tau2-bench adapter (retail, airline, telecom)."""
