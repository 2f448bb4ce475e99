"""Records for unit tests, built as a job would write them."""

from __future__ import annotations

from typing import Any

from tau_exp.records import Metrics, ModelUsage


def job_metrics(**fields: Any) -> Metrics:
    """A finished retail job's metrics on the oracle, every pair scored 1.0 (4 tasks × 1 trial),
    with `fields` changed."""
    defaults: dict[str, Any] = dict(
        env="retail",
        split="test",
        agent="tool_calling",
        model="oracle",
        user="oracle",
        user_strategy="llm",
        avg_reward=1.0,
        pass_hat_k={"1": 1.0},
        n_tasks=4,
        n_trials=1,
        n_results=4,
        n_infra_errors=0,
        n_harness_errors=0,
        n_pending=0,
        termination_reasons={},
        usage={"assistant": ModelUsage(calls=144), "user": ModelUsage(calls=50)},
        avg_duration_s=1.0,
    )
    return Metrics(**{**defaults, **fields})
