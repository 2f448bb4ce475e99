"""The settings of a model's calls, as plain values: what an episode carries to its `ChatModel`
(and to the worker processes), apart from the config and from how the model is served."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tau_exp.config import ModelConfig, RetryConfig


@dataclass(frozen=True)
class CallSettings:
    """What every call of one model sends besides its messages: the sampling settings, the
    request's timeout and litellm's extra arguments (a plain value, apart from how the model is
    served: it goes to the worker processes with each episode)."""

    temperature: float | None  # None: the server's default
    max_tokens: int | None  # None: the server's limit
    timeout_s: float
    llm_args: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model: ModelConfig) -> CallSettings:
        return cls(model.temperature, model.max_tokens, model.timeout_s, dict(model.llm_args))


@dataclass(frozen=True)
class Retry:
    """How one model call is retried on infrastructure failures (`run.retry`)."""

    attempts: int
    initial_backoff_s: float
    max_backoff_s: float

    @classmethod
    def of(cls, retry: RetryConfig) -> Retry:
        return cls(retry.attempts, retry.initial_backoff_s, retry.max_backoff_s)
