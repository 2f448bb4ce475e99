"""`EpisodeTag`: which (domain, task, trial, role) a model call belongs to, sent with every call
as HTTP headers. The oracle server reads it to know the task; on real servers it traces calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tau_exp.config import Benchmark

DOMAIN_HEADER = "X-Tau-Exp-Domain"
TASK_HEADER = "X-Tau-Exp-Task"
TRIAL_HEADER = "X-Tau-Exp-Trial"
ROLE_HEADER = "X-Tau-Exp-Role"
PURPOSE_HEADER = "X-Tau-Exp-Purpose"  # per call: reply (default), react, verify, reflect
BENCH_HEADER = "X-Tau-Exp-Bench"  # tau2 (default) or tau_bench
SPLIT_HEADER = "X-Tau-Exp-Split"  # tau_bench only: its task ids are positions in a split


@dataclass(frozen=True)
class EpisodeTag:
    domain: str
    task_id: str
    trial: int
    role: str  # "assistant" or "user"
    bench: Benchmark = Benchmark.tau2
    split: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            DOMAIN_HEADER: self.domain,
            TASK_HEADER: self.task_id,
            TRIAL_HEADER: str(self.trial),
            ROLE_HEADER: self.role,
            BENCH_HEADER: Benchmark(self.bench).value,
        }
        if self.split is not None:
            headers[SPLIT_HEADER] = self.split
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> EpisodeTag | None:
        """The tag of a request, or None when a header is missing (case-insensitive mapping)."""
        try:
            return cls(
                headers[DOMAIN_HEADER],
                headers[TASK_HEADER],
                int(headers[TRIAL_HEADER]),
                headers[ROLE_HEADER],
                Benchmark(headers.get(BENCH_HEADER, Benchmark.tau2.value)),
                headers.get(SPLIT_HEADER),
            )
        except (KeyError, ValueError):
            return None
