"""`Episode`: what a benchmark adapter holds while one (task, trial) runs — the episode's two
models, tagged with the episode — and how it ends as a record."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from datetime import datetime, timezone

from tau_exp.bench import EpisodeSpec
from tau_exp.config import Benchmark
from tau_exp.errors import InfraError
from tau_exp.llm.chat import ChatModel
from tau_exp.llm.concurrency import slots_for
from tau_exp.llm.tags import EpisodeTag
from tau_exp.records import EpisodeResult, EpisodeStatus, ErrorInfo

log = logging.getLogger(__name__)


class Episode:
    """One episode's two models (tagged with the episode) and the record it ends with."""

    def __init__(self, spec: EpisodeSpec, task_id: str, cancel: threading.Event | None) -> None:
        self.spec = spec
        self.task_id = task_id
        split = spec.split if spec.bench != Benchmark.tau2 else None  # tau2's task ids are unique in a domain
        self.models = {
            role: ChatModel(
                endpoint,
                settings,
                spec.retry,
                EpisodeTag(spec.domain, task_id, spec.trial, role, spec.bench, split),
                cancel,
                slots_for(spec.limits, endpoint.base_url),
            )
            for role, endpoint, settings in (
                ("assistant", spec.assistant, spec.assistant_settings),
                ("user", spec.user, spec.user_settings),
            )
        }
        self.started_at = datetime.now(timezone.utc).isoformat()
        self._started = time.perf_counter()

    def record(self, status: EpisodeStatus, **fields) -> EpisodeResult:
        return EpisodeResult(
            task_id=self.task_id,
            trial=self.spec.trial,
            seed=self.spec.seed,
            status=status,
            usage={role: model.stats.model_copy() for role, model in self.models.items()},
            started_at=self.started_at,
            duration_s=time.perf_counter() - self._started,
            **fields,
        )

    def failed(self, error: Exception) -> EpisodeResult:
        """The record of an episode that raised: an infra error (a model server failed after
        retries) or a harness error (a bug in tau_exp or the benchmark). Neither is scored; both
        are rerun on resume."""
        if isinstance(error, InfraError):
            return self.record(EpisodeStatus.infra_error, error=ErrorInfo(type="InfraError", message=str(error)))
        log.error("task %s trial %d failed unexpectedly", self.task_id, self.spec.trial, exc_info=error)
        return self.record(
            EpisodeStatus.harness_error,
            error=ErrorInfo(
                type=type(error).__name__,
                message=str(error)[:2000],
                traceback="".join(traceback.format_exception(error)),
            ),
        )
