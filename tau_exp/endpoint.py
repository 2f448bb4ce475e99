"""`Endpoint`: where a model is served and how to call it — what every server kind provides."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible model endpoint. The key is kept out of repr() so it never reaches logs."""

    base_url: str  # ends with /v1
    model: str  # the served model name
    provider: str = "hosted_vllm"  # litellm provider prefix
    api_key: str | None = field(default=None, repr=False)
    slurm_job_id: str | None = None  # the shared server job serving it (the slurm kind), for its cost

    @property
    def litellm_model(self) -> str:
        return f"{self.provider}/{self.model}"
