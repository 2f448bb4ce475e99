"""Agents of the tau-bench v1 test double (mirrors upstream tau_bench/agents/)."""
