"""Tiny "airline" domain of the tau-bench v1 test double (mirrors tau_bench/envs/airline/__init__.py)."""

from tau_bench.envs.airline.env import MockAirlineDomainEnv as MockAirlineDomainEnv
