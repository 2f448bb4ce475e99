"""Tiny "retail" domain of the tau-bench v1 test double (mirrors tau_bench/envs/retail/__init__.py)."""

from tau_bench.envs.retail.env import MockRetailDomainEnv as MockRetailDomainEnv
