"""`get_env` of tau-bench v1 (mirrors upstream tau_bench/envs/__init__.py)."""

from typing import Optional, Union

from tau_bench.envs.base import Env
from tau_bench.envs.user import UserStrategy


def get_env(
    env_name: str,
    user_strategy: Union[str, UserStrategy],
    user_model: str,
    task_split: str,
    user_provider: Optional[str] = None,
    task_index: Optional[int] = None,
) -> Env:
    """Build the "retail" or "airline" environment. Note: with an LLM user strategy the
    constructor already calls the user model once (the user simulator resets itself)."""
    if env_name == "retail":
        from tau_bench.envs.retail import MockRetailDomainEnv

        env_class = MockRetailDomainEnv
    elif env_name == "airline":
        from tau_bench.envs.airline import MockAirlineDomainEnv

        env_class = MockAirlineDomainEnv
    else:
        raise ValueError(f"Unknown environment: {env_name}")
    return env_class(
        user_strategy=user_strategy,
        user_model=user_model,
        task_split=task_split,
        user_provider=user_provider,
        task_index=task_index,
    )
